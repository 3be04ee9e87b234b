#!/usr/bin/env python3
"""Run ckptscope on the attack corpus and compare with cases.json.

usage: python3 run.py BINARY [CASE-SUBSTRING ...]

For every case (run from this folder, paths as corpus/CASE):
  BINARY scan corpus/CASE --json   exit code, each entry's verdict, folder members covered
  BINARY scan corpus/CASE          exit code must equal the JSON run's
  BINARY info corpus/CASE --json   a file: never exit 0 with scan.verdict "safe" (or no verdict) unless
                                   expected safe; a folder (package view): every claimed member listed,
                                   never "not_checkpoint" or scanned-safe unless expected safe, exit 2
                                   when something claimed was not scanned
Each run: 20 s timeout, 4 GiB address-space cap (prlimit --as), time and peak RSS (/usr/bin/time -v).
Writes results/<binary-name>.json and results/<binary-name>.txt; prints FAILs with a repro command.
"""
import json, os, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 20
MEM = 4 * 1024 ** 3
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
PRLIMIT = shutil.which("prlimit")


def run(binary, args):
    tf = tempfile.NamedTemporaryFile(delete=False, suffix=".time")
    tf.close()
    cmd = [binary] + args
    if PRLIMIT:
        cmd = [PRLIMIT, "--as=%d" % MEM, "--"] + cmd
    if GNU_TIME:
        cmd = [GNU_TIME, "-v", "-o", tf.name] + cmd
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        rc = proc.returncode
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc, timed_out = None, True
    secs = time.monotonic() - t0
    rss_kb = None
    try:
        with open(tf.name) as f:
            for line in f:
                if "Maximum resident set size" in line:
                    rss_kb = int(line.split(":")[1])
                elif "Exit status" in line and rc is not None:
                    rc = int(line.split(":")[1])
                elif "Command terminated by signal" in line and rc is not None:
                    rc = 128 + int(line.split()[-1])
    except (OSError, ValueError):
        pass
    os.unlink(tf.name)
    return {"rc": rc, "timeout": timed_out, "secs": round(secs, 3), "rss_mb": round(rss_kb / 1024, 1) if rss_kb else None,
            "out": out.decode("utf-8", "replace"), "err": err.decode("utf-8", "replace")}


def ok_verdict(v, exp):
    """one scan entry's verdict against a member expectation"""
    if exp == "safe":
        return v == "safe"
    if exp == "not_scanned":
        return v == "error"
    return v in ("suspicious", "dangerous", "error")


def exit_ok(rc, exp):
    if rc is None or rc < 0 or rc > 2:
        return False
    return {"safe": rc == 0, "not_scanned": rc == 2, "not_safe": rc >= 1}[exp]


def rel(entry_path, case_path):
    a = os.path.normpath(entry_path)
    b = os.path.normpath(case_path)
    if a == b:
        return ""
    if a.startswith(b + os.sep):
        return a[len(b) + 1:]
    return None


def check_case(binary, name, spec):
    path = "corpus/" + name
    is_dir = os.path.isdir(os.path.join(HERE, path)) and not os.path.islink(os.path.join(HERE, path))
    exp = spec["expect"]
    fails = []
    r = {"case": name, "expect": exp, "claims": spec["claims"], "dir": is_dir}

    sj = run(binary, ["scan", path, "--json"])
    st = run(binary, ["scan", path])
    inf = run(binary, ["info", path, "--json"])
    r["scan_rc"], r["scan_text_rc"], r["info_rc"] = sj["rc"], st["rc"], inf["rc"]
    r["secs"] = max(sj["secs"], st["secs"], inf["secs"])
    r["rss_mb"] = max([x["rss_mb"] or 0 for x in (sj, st, inf)])
    for label, x in (("scan --json", sj), ("scan", st), ("info --json", inf)):
        if x["timeout"]:
            fails.append("%s: timed out after %d s" % (label, TIMEOUT))
        elif x["rc"] is not None and x["rc"] > 2 and x["rc"] != 141:
            fails.append("%s: crashed, exit %s: %s" % (label, x["rc"], x["err"].strip()[-200:]))

    # --- scan --json
    entries = []
    try:
        entries = json.loads(sj["out"]) if sj["out"].strip() else []
    except ValueError:
        fails.append("scan --json: output is not JSON")
    r["said"] = "; ".join("%s=%s" % (rel(e.get("path", ""), path) or os.path.basename(e.get("path", "")) or ".", e.get("verdict"))
                          for e in entries)[:400] or (sj["err"].strip().splitlines() or [""])[-1][:300]
    if not sj["timeout"] and not exit_ok(sj["rc"], exp):
        fails.append("scan exit %s, expected %s" % (sj["rc"], {"safe": "0", "not_scanned": "2", "not_safe": ">=1"}[exp]))
    if not st["timeout"] and not sj["timeout"] and st["rc"] != sj["rc"]:
        fails.append("scan text exit %s differs from --json exit %s" % (st["rc"], sj["rc"]))
    if not is_dir:
        for e in entries:
            if not ok_verdict(e.get("verdict"), exp):
                fails.append("scan verdict %s, expected %s" % (e.get("verdict"), exp))
        if not entries and exp != "safe" and sj["rc"] == 0:
            fails.append("scan printed nothing and exit 0")
    else:
        for m, mexp in spec["members"].items():
            covering = []
            for e in entries:
                rp = rel(e.get("path", ""), path)
                if rp is None:
                    continue
                if rp == m or (rp and m.startswith(rp + "/")) or (rp == "" and e.get("verdict") != "safe"):
                    covering.append(e)
            if not covering:
                fails.append("member %s not in scan results (claimed, silently skipped)" % m)
                continue
            vs = [e.get("verdict") for e in covering]
            if not any(ok_verdict(v, mexp) for v in vs):
                fails.append("member %s: scan said %s, expected %s" % (m, "/".join(map(str, vs)), mexp))
        if exp == "safe":
            for e in entries:
                if e.get("verdict") != "safe":
                    fails.append("control entry %s: %s" % (rel(e.get("path", ""), path), e.get("verdict")))

    for needle in spec.get("must_find", []):
        if needle not in sj["out"]:
            fails.append("scan --json never mentions %s (a finding swallowed by an enclosing verdict)" % needle)

    # --- info --json
    try:
        info = json.loads(inf["out"]) if inf["out"].strip() else None
    except ValueError:
        info = None
        if inf["rc"] == 0:
            fails.append("info --json: output is not JSON")
    if isinstance(info, dict) and info.get("kind") == "package":
        files = {f.get("path"): f for f in info.get("files", [])}
        for m, mexp in spec["members"].items():
            f = files.get(m)
            if f is None:
                # a model folder judged as one may appear under its folder
                parents = [k for k in files if m.startswith(k + "/")]
                if parents:
                    f = files[parents[0]]
            if f is None:
                sk = [s for s in info.get("skipped", []) if isinstance(s, dict) and
                      (m == s.get("path") or m.startswith(str(s.get("path", "")).rstrip("/") + "/") or
                       str(s.get("path", "")).endswith("/" + m) or ("/" + m).startswith(str(s.get("path", "")).rstrip("/") + "/")
                       or any(str(s.get("path", "")).endswith("/" + part) for part in [m.split("/")[0]]))]
                if sk:
                    fails.append("info: member %s not judged, only listed as skipped (%s), info exit %s" % (m, sk[0].get("reason"), inf["rc"]))
                else:
                    fails.append("info: member %s missing from the package view" % m)
                continue
            ck = f.get("check") or {}
            status, v = ck.get("status"), ck.get("verdict")
            if mexp == "safe":
                if not (status == "scanned" and v == "safe"):
                    fails.append("info: control member %s shown as %s/%s" % (m, status, v))
            elif status in ("not_checkpoint", "skipped", None):
                fails.append("info: claimed member %s shown as %s (format %s)" % (m, status, f.get("format")))
            elif status == "scanned" and v == "safe":
                fails.append("info: member %s shown scanned SAFE, expected %s" % (m, mexp))
            elif mexp == "not_scanned" and status == "scanned":
                fails.append("info: member %s shown scanned %s, expected not scanned" % (m, v))
        if exp == "not_scanned" and inf["rc"] != 2:
            fails.append("info DIR exit %s, expected 2" % inf["rc"])
        if exp == "safe" and inf["rc"] != 0:
            fails.append("info DIR exit %s on a control" % inf["rc"])
    elif not inf["timeout"]:
        scan = info.get("scan") if isinstance(info, dict) else None
        v = scan.get("verdict") if isinstance(scan, dict) else None
        r["info_verdict"] = v
        if exp == "safe":
            if inf["rc"] != 0:
                fails.append("info exit %s on a control: %s" % (inf["rc"], inf["err"].strip()[-160:]))
        elif inf["rc"] == 0 and is_dir:
            fails.append("info exit 0 on a claimed folder, output kind %s" % (info.get("kind") if isinstance(info, dict) else None))
        elif inf["rc"] == 0 and (v is None or v == "safe"):
            fails.append("info exit 0 with %s (format %s), expected %s" % ("scan verdict safe" if v == "safe" else "no verdict",
                                                                         info.get("format") if isinstance(info, dict) else "?", exp))
    r["fails"] = fails
    r["status"] = "FAIL" if fails else "PASS"
    r["repro"] = "cd %s && %s scan %s --json; echo $?" % (HERE, binary, path)
    return r


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    filt = sys.argv[2:]
    with open(os.path.join(HERE, "cases.json")) as f:
        cases = json.load(f)
    results = []
    for name, spec in cases.items():
        if filt and not any(s in name for s in filt):
            continue
        results.append(check_case(binary, name, spec))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    tag = os.path.basename(binary)
    with open(os.path.join(HERE, "results", tag + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = []
    nf = sum(r["status"] == "FAIL" for r in results)
    lines.append("%s: %d cases, %d PASS, %d FAIL; slowest %.2f s, peak RSS %.0f MB" % (
        binary, len(results), len(results) - nf, nf, max(r["secs"] for r in results), max(r["rss_mb"] for r in results)))
    for r in results:
        if r["status"] == "FAIL":
            lines.append("FAIL %-40s expect %-11s scan=%s info=%s | %s" % (r["case"], r["expect"], r["scan_rc"], r["info_rc"], r["said"][:160]))
            for x in r["fails"]:
                lines.append("      - " + x)
    lines.append("PASS: " + " ".join(r["case"] for r in results if r["status"] == "PASS"))
    text = "\n".join(lines)
    with open(os.path.join(HERE, "results", tag + ".txt"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
