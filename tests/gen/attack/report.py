#!/usr/bin/env python3
"""Group the FAILs of results/<binary>.json by root cause, as Markdown.

usage: python3 report.py results/ckptscope-reg-HHMM.json
"""
import json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))

# case -> root cause (first match of a prefix/equal name wins); anything unlisted goes to "other"
CAUSES = [
    ("A. Claimed entries that are not regular files are skipped in folders (FIFO, dangling symlink, symlinked folder not followed)",
     ["dir_fifo", "dir_broken_link", "dir_symlink_dir"]),
    ("B. A sharded index is SAFE without its shards (missing shard, shard path leaving the folder)",
     ["dir_index_missing", "dir_index_traversal", "dir_bin_index", "dir_index_h5", "dir_index_absolute"]),
    ("C. Model names the registry does not claim (.index, .pbtxt, .lite, .ggml, .mlmodel, .pte, .nemo, .engine, .mar, .llamafile; names without a stem such as `.gguf`)",
     ["dir_zero_bytes", "dir_one_byte", "dir_other_ext", "dir_dotnames"]),
    ("D. A torch zip's other members are not judged: a Keras archive that is also a torch archive is SAFE",
     ["keras_torch_polyglot", "torch_plus_h5_member"]),
    ("E. Malformed NumPy is SAFE or only suspicious (not 'not scanned'); `info` says SAFE where `scan` says suspicious",
     ["npy_text.npy", "npy_bad_header.npy", "npy_trunc.npy", "i26_truncated.npy"]),
    ("L. An enclosing 'not scanned' verdict swallows what was readable inside (SavedModel folder, Orbax folder, zip/.keras with an unread member): the os.system pickle beside it is never reported; info shows it as not_checkpoint",
     ["sm_with_pickles", "zip_h5_and_pickle", "keras_plus_pickle", "flax_orbax_with_pickle"]),
    ("F. Package view (`info DIR`) differs from `scan DIR`: hidden folders left out, a claimed name with unknown content shown as not_checkpoint (exit 0)",
     ["dir_hidden", "dir_index_garbage"]),
    ("K. Zip members with a plain name (json, txt, md, png...) are skipped unread: HDF5, TFLite, GGUF or a tar.gz under such a name, or a '..'/absolute/symlink member so named, is SAFE (a folder walk catches the same files by content)",
     ["zip_h5_as_json_member", "zip_tflite_as_png_member", "zip_gguf_word_member", "zip_tgz_as_md", "zip_traversal_plain", "zip_symlink_plain"]),
    ("G. Paddle `.pdparams` read as a plain pickle (SAFE) though the registry lists Paddle as refused; truncated -> suspicious",
     ["paddle_real", "paddle_trunc"]),
    ("H. Compressed content with an innocent name is skipped in folders (tar is claimed by content, tar.gz/gz are not)",
     ["dir_renamed"]),
    ("I. Non-UTF-8 file name: `scan --json` prints no report (exit 2) while the text scan says dangerous (exit 1)",
     ["dir_nonutf8"]),
    ("J. Issue 26 verdicts (operators, duplicate names, templates, formats without magic) — not the fail-closed work",
     ["i26_onnx", "i26_zip_duplicate", "i26_gguf_template", "onnx_custom_as.bin", "dir_renamed_nomagic"]),
]
MIXED = {"dir_messy": "A+F (FIFO skipped; .hidden/ missing from info)"}


def cause_of(name):
    if name in MIXED:
        return "mixed"
    for title, keys in CAUSES:
        if name in keys:
            return title
    for title, keys in CAUSES:
        for k in keys:
            if name.startswith(k):
                return title
    return "Other"


def main():
    res = json.load(open(sys.argv[1]))
    binary = res[0]["repro"].split(" && ")[1].split(" scan ")[0] if res else "?"
    fails = [r for r in res if r["status"] == "FAIL"]
    print("Binary `%s`: %d cases, %d PASS, %d FAIL; slowest run %.2f s, peak RSS %.0f MB\n" % (
        binary, len(res), len(res) - len(fails), len(fails), max(r["secs"] for r in res), max(r["rss_mb"] for r in res)))
    groups = {}
    for r in fails:
        groups.setdefault(cause_of(r["case"]), []).append(r)
    order = [t for t, _ in CAUSES] + ["mixed", "Other"]
    for title in order:
        if title not in groups:
            continue
        print("### " + (title if title != "mixed" else "Mixed") + "\n")
        print("| case | claims | ckptscope said (scan exit / info exit) | expected |")
        print("|---|---|---|---|")
        for r in groups[title]:
            said = "; ".join(f for f in r["fails"])[:300].replace("|", "/")
            print("| `%s` | %s | exit %s / %s: %s | %s |" % (r["case"], r["claims"], r["scan_rc"], r["info_rc"], said, r["expect"]))
        print("\nRepro:\n```")
        for r in groups[title]:
            info = any(f.startswith("info") for f in r["fails"])
            scan = any(not f.startswith("info") for f in r["fails"])
            cmd = []
            if scan:
                cmd.append("%s scan corpus/%s; echo $?" % (binary, r["case"]))
            if info:
                cmd.append("%s info corpus/%s --json; echo $?" % (binary, r["case"]))
            print("\n".join(cmd))
        print("```\n")
    print("PASS (%d): %s" % (len(res) - len(fails), " ".join(r["case"] for r in res if r["status"] == "PASS")))


if __name__ == "__main__":
    main()
