"""Scanner cases beyond pickles (issue 26), rebuilt with the real libraries: archives (zip, tar
and its compressed forms, 7z) with path traversal, absolute paths, links escaping the root,
duplicate names and nesting; an object-dtype .npy whose pickle calls exec; ONNX nodes in a
custom domain and a PythonOp; GGUF chat templates (standard and sandbox-escaping); malformed
files; and benign controls for each. Writes tests/fixtures/next/scanner/.

    $VENVS/misc/bin/python gen_scanner.py     (numpy, onnx, gguf, py7zr, backports.zstd)

Nothing here is ever loaded or extracted by the generator; the payloads only print a fixed
string or name harmless paths (they are data for a scanner). Truth (`NAME.expected.json`):
`expected_verdict` (safe / suspicious / dangerous / not scanned), `why`, the members of
archives as the writing library lists them (name, size, type, link target), and for tensor
carrying files the usual `tensors`.
"""

import io
import os
import stat
import tarfile
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from _truth import out_dir, sample, truth, versions, write_truth

GEN = "gen_scanner.py"
VERS = versions("numpy", "onnx", "gguf", "py7zr", "backports.zstd")
OUT = out_dir("scanner")
rng = np.random.default_rng(26)
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def fresh(name):
    p = os.path.join(OUT, name)
    if os.path.exists(p):
        os.remove(p)
    return p


def verdict(path, expected, why, members=None, tensors=None, **extra):
    write_truth(path, tensors or {}, generator=GEN, library_versions=VERS,
                naming="archive member paths as stored; tensors as in the other groups",
                metadata={}, extra={"expected_verdict": expected, "why": why,
                                    "members": members, **extra})


def zinfo(name, mode=0o100644, compress=zipfile.ZIP_DEFLATED):
    zi = zipfile.ZipInfo(name, FIXED_TIME)
    zi.external_attr = mode << 16
    zi.compress_type = compress
    zi.create_system = 3  # Unix: the mode in external_attr is meaningful
    return zi


def zip_members(path):
    with zipfile.ZipFile(path) as z:
        return [{"name": i.filename, "size": i.file_size, "compress_type": i.compress_type,
                 "unix_mode": oct(i.external_attr >> 16),
                 "is_symlink": stat.S_ISLNK(i.external_attr >> 16),
                 "link_target": (z.read(i).decode() if stat.S_ISLNK(i.external_attr >> 16)
                                 else None)} for i in z.infolist()]


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a, allow_pickle=True)
    return b.getvalue()


class _Exec:
    """Pickles as builtins.exec("print('ckptscope fixture')") (never unpickled here)."""

    def __reduce__(self):
        return (exec, ("print('ckptscope fixture')",))


def write_archives():
    w = sample(rng, np.float32, (4, 4))
    safe_npy = npy_bytes(w)

    p = fresh("zip_traversal.zip")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zinfo("model/weights.npy"), safe_npy)
        z.writestr(zinfo("../../../../root/.bashrc"), "echo ckptscope fixture\n")
        z.writestr(zinfo("/etc/cron.d/ckptscope-fixture"), "# ckptscope fixture\n")
        z.writestr(zinfo("C:/Windows/ckptscope.txt"), "drive letter\n")
        z.writestr(zinfo("model\\..\\..\\backslash.txt"), "backslash traversal\n")
    verdict(p, "dangerous", "members with '..' components, an absolute path, a drive letter "
            "and backslash separators: an extraction writes outside its folder",
            zip_members(p), {"model/weights.npy": truth(w)})

    p = fresh("zip_symlink.zip")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zinfo("model/weights.npy"), safe_npy)
        z.writestr(zinfo("model/link", mode=0o120777, compress=zipfile.ZIP_STORED),
                   "../../../etc/passwd")
        z.writestr(zinfo("model/inner_link", mode=0o120777, compress=zipfile.ZIP_STORED),
                   "weights.npy")  # stays inside: benign on its own
    verdict(p, "dangerous", "a symlink entry (Unix mode 0120777) whose target leaves the "
            "extraction folder", zip_members(p), {"model/weights.npy": truth(w)})

    p = fresh("zip_duplicate_names.zip")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zinfo("weights.npy"), safe_npy)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z.writestr(zinfo("weights.npy"), npy_bytes(np.zeros(3, np.float32)))
    verdict(p, "dangerous", "two members with the same name: which one an extraction keeps "
            "depends on the tool", zip_members(p))

    p = fresh("zip_benign.zip")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zinfo("model/weights.npy"), safe_npy)
        z.writestr(zinfo("model/README.txt", compress=zipfile.ZIP_STORED), "weights\n")
    verdict(p, "safe", "benign control: plain relative members", zip_members(p),
            {"model/weights.npy": truth(w)})

    # Nested: outer.zip > middle.zip > inner.zip > object.npy whose pickle calls exec
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = "label", _Exec()
    evil = npy_bytes(obj)
    inner, middle = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr(zinfo("object.npy"), evil)
    with zipfile.ZipFile(middle, "w") as z:
        z.writestr(zinfo("inner.zip", compress=zipfile.ZIP_STORED), inner.getvalue())
    p = fresh("zip_nested_exec.zip")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(zinfo("middle.zip"), middle.getvalue())
        z.writestr(zinfo("weights.npy"), safe_npy)
    verdict(p, "dangerous", "three levels of zip; the innermost object .npy's pickle calls "
            "builtins.exec", zip_members(p), {"weights.npy": truth(w)},
            finding_path="zip_nested_exec.zip › middle.zip › inner.zip › object.npy")

    p = fresh("object_exec.npy")
    with open(p, "wb") as f:
        f.write(evil)
    verdict(p, "dangerous", "object-dtype .npy (needs allow_pickle=True) whose pickle calls "
            "builtins.exec")

    # tar family
    def tar_write(path, mode, opener=tarfile.open):
        if mode == "w:gz":  # gzip header time fixed at 0: byte-identical reruns
            import gzip
            gz = gzip.GzipFile(path, "wb", mtime=0)
            with gz, tarfile.open(fileobj=gz, mode="w") as t:
                yield from _adder(t)
            return
        with opener(path, mode) as t:
            yield from _adder(t)

    def _adder(t):
        def add(name, data=b"", typ=tarfile.REGTYPE, link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mtime, ti.mode = typ, link, 1704067200, 0o644
            ti.size = len(data) if typ == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
        yield add

    def tar_members(path, opener=tarfile.open):
        with opener(path, "r:*") as t:
            return [{"name": m.name, "size": m.size,
                     "type": {tarfile.REGTYPE: "file", tarfile.SYMTYPE: "symlink",
                              tarfile.LNKTYPE: "hardlink", tarfile.DIRTYPE: "dir"}.get(
                                  m.type, str(m.type)),
                     "link_target": m.linkname or None} for m in t.getmembers()]

    for name, mode in (("tar_traversal.tar", "w"), ("tar_traversal.tar.gz", "w:gz"),
                       ("tar_traversal.tar.bz2", "w:bz2"), ("tar_traversal.tar.xz", "w:xz")):
        p = fresh(name)
        gen = tar_write(p, mode)
        add = next(gen)
        add("model/weights.npy", safe_npy)
        add("../../../../root/.bashrc", b"echo ckptscope fixture\n")
        add("/etc/cron.d/ckptscope-fixture", b"# fixture\n")
        add("model/escape", typ=tarfile.SYMTYPE, link="../../../../etc/passwd")
        add("model/hard", typ=tarfile.LNKTYPE, link="/etc/shadow")
        next(gen, None)
        verdict(p, "dangerous", "traversal and absolute member names, a symlink and a hard "
                "link pointing outside the extraction folder", tar_members(p),
                {"model/weights.npy": truth(w)})
    try:
        from backports.zstd import tarfile as ztar
        p = fresh("tar_traversal.tar.zst")
        gen = tar_write(p, "w:zst", ztar.open)
        add = next(gen)
        add("model/weights.npy", safe_npy)
        add("../escape.txt", b"fixture\n")
        next(gen, None)
        verdict(p, "dangerous", "zstd-compressed tar with a '..' member",
                tar_members(p, ztar.open), {"model/weights.npy": truth(w)})
    except ImportError:
        print("backports.zstd missing: no .tar.zst")

    p = fresh("tar_benign.tgz")
    gen = tar_write(p, "w:gz")
    add = next(gen)
    add("model", typ=tarfile.DIRTYPE)
    add("model/weights.npy", safe_npy)
    add("model/latest", typ=tarfile.SYMTYPE, link="weights.npy")
    next(gen, None)
    verdict(p, "safe", "benign control: relative members, a symlink inside the root",
            tar_members(p), {"model/weights.npy": truth(w)})

    # TF-Hub style tarball of a SavedModel, if gen_tf.py has run
    sm = os.path.join(OUT, "..", "tf", "savedmodel_two_signatures")
    if os.path.isdir(sm):
        p = fresh("savedmodel_hub.tar.gz")
        import gzip
        with gzip.GzipFile(p, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as t:
            for root, _, files in sorted(os.walk(sm)):
                for f in sorted(files):
                    full = os.path.join(root, f)
                    ti = t.gettarinfo(full, arcname=os.path.relpath(full, sm))
                    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 1704067200, 0, 0, "", ""
                    with open(full, "rb") as fh:
                        t.addfile(ti, fh)
        verdict(p, "safe", "TF-Hub style tarball of tf/savedmodel_two_signatures (a model: "
                "judged as a SavedModel)", tar_members(p))

    # 7z
    try:
        import py7zr
        p = fresh("sevenzip_benign.7z")
        with py7zr.SevenZipFile(p, "w") as z:
            z.writestr(safe_npy, "model/weights.npy")
            z.writestr(b"weights\n", "model/README.txt")
        with py7zr.SevenZipFile(p, "r") as z:
            mem = [{"name": i.filename, "size": i.uncompressed, "is_directory": i.is_directory}
                   for i in z.list()]
        verdict(p, "safe", "benign 7z (LZMA2) of an .npy", mem, {"model/weights.npy": truth(w)})
        # py7zr refuses to write a '..' member name ("Specified path is bad"), so the 7z
        # attack case is a dangerous member instead: the exec-calling object .npy
        p = fresh("sevenzip_object_exec.7z")
        with py7zr.SevenZipFile(p, "w") as z:
            z.writestr(safe_npy, "model/weights.npy")
            z.writestr(evil, "model/object.npy")
        with py7zr.SevenZipFile(p, "r") as z:
            mem = [{"name": i.filename, "size": i.uncompressed} for i in z.list()]
        verdict(p, "dangerous", "7z whose member model/object.npy is an object array whose "
                "pickle calls builtins.exec", mem, {"model/weights.npy": truth(w)},
                finding_path="sevenzip_object_exec.7z › model/object.npy")
    except ImportError:
        print("py7zr missing: no 7z files")


def write_onnx_ops():
    w = numpy_helper.from_array(sample(rng, np.float32, (3, 3)), "w")

    def model(nodes, name, opsets, extra_inits=()):
        g = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=[w, *extra_inits])
        return helper.make_model(g, producer_name="ckptscope-fixtures",
                                 opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])

    cases = {
        "onnx_custom_domain.onnx": (
            [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("FastGelu", ["h"], ["y"], name="custom_gelu",
                              domain="com.example.custom")],
            [("", 17), ("com.example.custom", 1)], "suspicious",
            "node custom_gelu of domain com.example.custom (op FastGelu) needs native code "
            "registered by the runtime"),
        "onnx_pythonop.onnx": (
            [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("PyOp", ["h"], ["y"], name="py", domain="ai.onnx.contrib",
                              CustomType="ckptscope_fixture", func="print")],
            [("", 17), ("ai.onnx.contrib", 1)], "dangerous",
            "PyOp (onnxruntime-extensions): runs a registered Python function"),
        "onnx_aten_pythonop.onnx": (
            [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("PythonOp", ["h"], ["y"], name="pyop", domain="com.microsoft",
                              name_s="ckptscope.fixture", inplace=0)],
            [("", 17), ("com.microsoft", 1)], "dangerous",
            "PythonOp (torch.onnx export of an autograd.Function): runs Python"),
        "onnx_function_custom.onnx": None,  # built below
        "onnx_benign_ml.onnx": (
            [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Normalizer", ["h"], ["y"], domain="ai.onnx.ml", norm="L2")],
            [("", 17), ("ai.onnx.ml", 3)], "safe",
            "benign control: standard ai.onnx and ai.onnx.ml operators only"),
    }
    for name, spec in cases.items():
        if spec is None:
            continue
        nodes, opsets, exp, why = spec
        m = model(nodes, name.split(".")[0], opsets)
        p = fresh(name)
        onnx.save(m, p)
        back = onnx.load(p)
        verdict(p, exp, why, tensors={"w": truth(numpy_helper.to_array(back.graph.initializer[0]))},
                nodes=[{"name": n.name, "op_type": n.op_type, "domain": n.domain or "ai.onnx"}
                       for n in back.graph.node])

    # a custom-domain op hidden inside a FunctionProto used by the graph
    fn = helper.make_function(
        "local.fns", "Wrapped", ["a"], ["b"],
        [helper.make_node("Hidden", ["a"], ["b"], domain="com.example.custom")],
        [helper.make_opsetid("", 17), helper.make_opsetid("com.example.custom", 1)])
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                           helper.make_node("Wrapped", ["h"], ["y"], domain="local.fns")],
                          "fn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                          initializer=[w])
    m = helper.make_model(g, functions=[fn], producer_name="ckptscope-fixtures",
                          opset_imports=[helper.make_opsetid("", 17),
                                         helper.make_opsetid("local.fns", 1),
                                         helper.make_opsetid("com.example.custom", 1)])
    p = fresh("onnx_function_custom.onnx")
    onnx.save(m, p)
    verdict(p, "suspicious", "FunctionProto local.fns/Wrapped calls Hidden of domain "
            "com.example.custom", tensors={"w": truth(numpy_helper.to_array(w))},
            functions=[{"domain": f.domain, "name": f.name,
                        "nodes": [{"op_type": n.op_type, "domain": n.domain}
                                  for n in f.node]} for f in onnx.load(p).functions])


LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}")

TEMPLATES = {
    "gguf_template_llama2.gguf": ("safe", "the standard Llama-2 chat template", LLAMA2_TEMPLATE),
    "gguf_template_subclasses.gguf": (
        "dangerous", "attribute access to dunder names reaching __subclasses__",
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    "gguf_template_attr_escape.gguf": (
        "dangerous", "|attr() with \\x5f escapes spelling __class__ / __globals__",
        "{{ cycler|attr('\\x5f\\x5finit\\x5f\\x5f')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}"
        "{% for m in messages %}{{ m.content }}{% endfor %}"),
    "gguf_template_concat.gguf": (
        "dangerous", "dunder name built by string concatenation and used as an item key",
        "{% set n = '__glo' ~ 'bals__' %}{{ joiner[ '__in' + 'it__' ][n]['__builtins__'] }}"),
}


def write_gguf():
    try:
        import gguf
    except ImportError:
        print("gguf missing")
        return
    t = sample(rng, np.float32, (4, 8))
    for name, (exp, why, tmpl) in TEMPLATES.items():
        p = fresh(name)
        wr = gguf.GGUFWriter(p, "llama")
        wr.add_name("ckptscope-fixture")
        wr.add_chat_template(tmpl)
        wr.add_tensor("token_embd.weight", t)
        wr.write_header_to_file()
        wr.write_kv_data_to_file()
        wr.write_tensors_to_file()
        wr.close()
        r = gguf.GGUFReader(p)
        back = {tt.name: np.array(tt.data).reshape([int(x) for x in reversed(tt.shape)])
                for tt in r.tensors}
        f = r.fields["tokenizer.chat_template"]
        stored = bytes(f.parts[f.data[0]]).decode()
        assert stored == tmpl
        verdict(p, exp, why, tensors={k: truth(v) for k, v in back.items()},
                chat_template=stored)


def write_malformed():
    """Real files cut short or damaged: 'not scanned' with the reason, never safe."""
    src = {
        "truncated.npy": npy_bytes(sample(rng, np.float32, (16, 16)))[:300],
        "truncated.onnx": None,
        "truncated.msgpack": None,
        "no_central_directory.zip": None,
    }
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])], "t", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 8])],
        initializer=[numpy_helper.from_array(sample(rng, np.float32, (8, 8)), "w")]),
        opset_imports=[helper.make_opsetid("", 17)])
    data = m.SerializeToString()
    src["truncated.onnx"] = data[: len(data) // 2]
    fm = os.path.join(OUT, "..", "flax", "params.msgpack")  # written by gen_flax.py
    if os.path.exists(fm):
        packed = open(fm, "rb").read()
        src["truncated.msgpack"] = packed[: len(packed) - 200]
    else:
        del src["truncated.msgpack"]
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr(zinfo("weights.npy"), npy_bytes(sample(rng, np.float32, (8,))))
    raw = zb.getvalue()
    src["no_central_directory.zip"] = raw[: raw.rfind(b"PK\x01\x02")]
    for name, data in src.items():
        p = fresh(name)
        with open(p, "wb") as f:
            f.write(data)
        verdict(p, "not scanned", f"{name.split('.')[0].replace('_', ' ')}: a real "
                f"{name.rsplit('.', 1)[1]} file cut short", size=len(data))
    tfl = os.path.join(OUT, "..", "tf", "float32.tflite")
    if os.path.exists(tfl):
        data = open(tfl, "rb").read()
        p = fresh("truncated.tflite")
        with open(p, "wb") as f:
            f.write(data[: len(data) // 3])
        verdict(p, "not scanned", "tf/float32.tflite cut to a third", size=len(data) // 3)


if __name__ == "__main__":
    write_archives()
    write_onnx_ops()
    write_gguf()
    write_malformed()
