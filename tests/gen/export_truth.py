#!/usr/bin/env python3
"""Writes tests/fixtures/export/: safetensors inputs, ckptscope's PyTorch exports of them, and
the truth of those exports as real torch reads them.

    cargo build && /work/venv/bin/python tests/gen/export_truth.py

The inputs are written here byte by byte (so dtypes Python's safetensors cannot save, such as
F8_E8M0, are there too):

- classic.safetensors: every dtype every torch since 1.6 has (F64 F32 F16 BF16 I64 I32 I16 I8
  U8 BOOL C64), a 0-d tensor, an empty one, a non-ASCII name;
- recent.safetensors: the dtypes torch added later (F8_E4M3 F8_E5M2 F8_E4M3FNUZ F8_E5M2FNUZ
  F8_E8M0 U16 U32 U64);
- tied.safetensors: a Hugging Face causal LM's state dict as `save_pretrained` writes it (the
  tied `lm_head.weight` dropped, `__metadata__` naming it as Hugging Face's convert.py does) plus
  `decoder.weight`, a copy of `encoder.weight` that `--tie decoder.weight=encoder.weight` shares;
- sharded/: two shards and `model.safetensors.index.json`.

Each is exported with the ckptscope binary (target/debug/ckptscope, or $CKPTSCOPE) with
SOURCE_DATE_EPOCH=0, so the committed `.bin` files are reproducible, and each `.bin` is then:

- loaded with `torch.load(weights_only=True)` and with plain `torch.load`: both must give the
  same tensors, whose bytes must equal the input's bytes;
- loaded the way torch 1.6 to 1.13 loaded a zip checkpoint (`old_torch_load` below: a plain
  `pickle.Unpickler`, a persistent id unpacked as exactly `(typename, data_type, key, location,
  size)`, `data_type(0).dtype`, the archive's folder taken from its first record), for files
  whose dtypes those versions have;
- saved again with `torch.save` under the same file name, whose `data.pkl` and record layout
  (names, offsets, sizes, CRCs) are recorded so the Rust test can compare ckptscope's output
  with torch's without Python.

For `NAME.bin` it writes `NAME.bin.expected.json` (for every tensor: dtype in safetensors
spelling, shape, sha256 of its bytes, the first earlier name it shares a storage with) and
`NAME.bin.torch.json` (the globals and highest protocol of its pickle, what each loader did,
and torch's re-save layout).
"""

import collections
import hashlib
import json
import os
import pickle
import pickletools
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "tests" / "fixtures" / "export"
BIN = os.environ.get("CKPTSCOPE", str(ROOT / "target" / "debug" / "ckptscope"))

ST = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.complex64: "C64",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ",
    torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
    torch.float8_e8m0fnu: "F8_E8M0",
    torch.uint16: "U16",
    torch.uint32: "U32",
    torch.uint64: "U64",
}


def raw(t):
    """The bytes of a contiguous tensor."""
    t = t.contiguous()
    n = t.numel() * t.element_size()
    s = t.untyped_storage()
    start = t.storage_offset() * t.element_size()
    return bytes(s[start : start + n].tolist()) if n else b""


def random_bytes(gen, dtype, shape):
    n = 1
    for d in shape:
        n *= d
    size = torch.empty((), dtype=dtype).element_size()
    b = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=gen)
    return b.view(dtype).reshape(shape)


def write_safetensors(path, tensors, metadata=None):
    """tensors: [(name, tensor)] in file order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    data = b""
    for name, t in tensors:
        b = raw(t)
        header[name] = {
            "dtype": ST[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [len(data), len(data) + len(b)],
        }
        data += b
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} and the metadata, read by hand."""
    b = path.read_bytes()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        s, t = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], b[8 + n + s : 8 + n + t])
    return out, meta


def inputs():
    gen = torch.Generator().manual_seed(0)
    randn = lambda *s, dtype=torch.float32: torch.randn(*s, generator=gen).to(dtype)
    classic = [
        ("embed.weight", randn(8, 4)),
        ("f64", randn(3, 2, dtype=torch.float64)),
        ("f16", randn(5, dtype=torch.float16)),
        ("bf16", randn(2, 3, dtype=torch.bfloat16)),
        ("i64", torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3)),
        ("i32", torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32)),
        ("i16", torch.tensor([-32768, 32767], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ("u8", torch.tensor([0, 1, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True, True])),
        ("c64", torch.complex(randn(3), randn(3))),
        ("scalar", torch.tensor(3.25)),
        ("empty", torch.zeros(0, 4)),
        ("couche.poids_été.名前", randn(2, 2)),
        ("x", randn(1, 1, 1, 2, 1)),
    ]
    recent = [
        ("f8_e4m3", random_bytes(gen, torch.float8_e4m3fn, [4, 2])),
        ("f8_e5m2", random_bytes(gen, torch.float8_e5m2, [3])),
        ("f8_e4m3fnuz", random_bytes(gen, torch.float8_e4m3fnuz, [2, 2])),
        ("f8_e5m2fnuz", random_bytes(gen, torch.float8_e5m2fnuz, [5])),
        ("f8_e8m0", random_bytes(gen, torch.float8_e8m0fnu, [6])),
        ("u16", random_bytes(gen, torch.uint16, [3])),
        ("u32", random_bytes(gen, torch.uint32, [2, 1])),
        ("u64", random_bytes(gen, torch.uint64, [2])),
        ("u16_scalar", random_bytes(gen, torch.uint16, [])),
        ("f8_empty", random_bytes(gen, torch.float8_e4m3fn, [0])),
    ]
    embed = randn(10, 4)
    encoder = randn(4, 4)
    tied = [
        ("model.embed_tokens.weight", embed),
        ("model.layers.0.mlp.weight", randn(4, 4)),
        ("model.norm.weight", torch.ones(4)),
        ("encoder.weight", encoder),
        ("decoder.weight", encoder.clone()),
    ]
    tied_meta = {"format": "pt", "lm_head.weight": "model.embed_tokens.weight"}
    shard1 = [("0.weight", randn(4, 3)), ("0.bias", randn(4))]
    shard2 = [("1.weight", randn(2, 4)), ("1.bias", randn(2))]
    return {
        "classic": (classic, {"format": "pt"}, []),
        "recent": (recent, None, []),
        "tied": (tied, tied_meta, ["--tie", "decoder.weight=encoder.weight"]),
    }, (shard1, shard2)


def export(src, args):
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    cmd = [BIN, "export", "--to", "pytorch", str(src), "--force", *args]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


class OldUnpickler(pickle.Unpickler):
    """A plain unpickler: resolves any global, as torch.load did before weights_only."""


def old_torch_load(path):
    """torch 1.6-1.13's `_load` for a zip checkpoint, transcribed: the archive's folder is the
    first record's (PyTorchStreamReader::init), `version` must be there and at most 5, the pid
    is unpacked into exactly four fields after 'storage', the storage is built from
    `data_type(0).dtype` and the record, and the pickle is read by a plain Unpickler."""
    z = zipfile.ZipFile(path)
    first = z.infolist()[0].filename
    prefix = first.split("/")[0]
    assert "/" in first, "file in archive is not in a subdirectory"
    version = int(z.read(f"{prefix}/version").decode().strip())
    assert 1 <= version <= 5, version
    loaded = {}

    def persistent_load(saved_id):
        assert isinstance(saved_id, tuple)
        typename = saved_id[0]
        data = saved_id[1:]
        assert typename == "storage", f"unknown typename for persistent_load, expected 'storage' but got '{typename}'"
        data_type, key, location, size = data
        if key not in loaded:
            dtype = data_type(0).dtype
            record = z.read(f"{prefix}/data/{key}")
            assert len(record) == size * torch.empty((), dtype=dtype).element_size()
            untyped = torch.UntypedStorage.from_buffer(record, dtype=torch.uint8) if record else torch.UntypedStorage(0)
            loaded[key] = torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
            assert location == "cpu"
        return loaded[key]

    u = OldUnpickler(__import__("io").BytesIO(z.read(f"{prefix}/data.pkl")))
    u.persistent_load = persistent_load
    return u.load()


def truth_of(sd):
    out = {}
    seen = []
    for name, t in sd.items():
        ptr = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        shares = next((n for n, p in seen if p == ptr and ptr[1] > 0), None)
        seen.append((name, ptr))
        out[name] = {
            "dtype": ST[t.dtype],
            "shape": list(t.shape),
            "sha256": hashlib.sha256(raw(t)).hexdigest(),
            "shares_storage_with": shares,
        }
    return out


def pickle_facts(data_pkl):
    globals_, proto = [], 0
    for op, arg, _ in pickletools.genops(data_pkl):
        proto = max(proto, op.proto)
        if op.name == "GLOBAL":
            g = arg.replace(" ", ".")
            if g not in globals_:
                globals_.append(g)
    return sorted(globals_), proto


def layout(path):
    z = zipfile.ZipFile(path)
    return [
        {"name": i.filename.split("/", 1)[1], "offset": i.header_offset, "size": i.file_size, "crc": i.CRC}
        for i in z.infolist()
    ]


def check(bin_path, source_tensors, source_meta, ties):
    strict = torch.load(bin_path, weights_only=True)
    plain = torch.load(bin_path, weights_only=False, map_location="cpu")
    assert type(strict) is collections.OrderedDict, type(strict)
    truth = truth_of(strict)
    assert truth == truth_of(plain), "weights_only and plain torch.load disagree"
    # Every tensor holds the input's bytes; restored tied names hold their target's.
    for name, e in truth.items():
        src = source_tensors.get(name) or source_tensors[ties[name]]
        assert e["dtype"] == src[0] and e["shape"] == src[1], name
        assert e["sha256"] == hashlib.sha256(src[2]).hexdigest(), name
    z = zipfile.ZipFile(bin_path)
    prefix = z.infolist()[0].filename.split("/")[0]
    data_pkl = z.read(f"{prefix}/data.pkl")
    globals_, proto = pickle_facts(data_pkl)
    facts = {"globals": globals_, "protocol": proto, "weights_only": True, "plain": True}
    if all(g in ("collections.OrderedDict", "torch._utils._rebuild_tensor_v2") or g.endswith("Storage") for g in globals_):
        assert truth_of(old_torch_load(bin_path)) == truth
        facts["old_torch_load"] = True
    else:
        facts["old_torch_load"] = "not tried: dtypes that torch 1.x does not have"
    # torch.save of what it loaded, under the same name: its pickle and layout.
    with tempfile.TemporaryDirectory() as d:
        again = Path(d) / bin_path.name
        torch.save(strict, again)
        zt = zipfile.ZipFile(again)
        facts["torch_resave"] = {
            "data_pkl_sha256": hashlib.sha256(zt.read(f"{prefix}/data.pkl")).hexdigest(),
            "records": layout(again),
        }
    facts["ckptscope_data_pkl_sha256"] = hashlib.sha256(data_pkl).hexdigest()
    assert facts["torch_resave"]["data_pkl_sha256"] == facts["ckptscope_data_pkl_sha256"], bin_path
    ours = [r for r in layout(bin_path) if r["name"] not in (".data/ckptscope.json", ".data/serialization_id")]
    theirs = [r for r in facts["torch_resave"]["records"] if r["name"] != ".data/serialization_id"]
    # Up to the storages the files are the same; ckptscope's provenance record comes before
    # `version`, so `version` moves.
    ours_v = [r for r in ours if r["name"] != "version"]
    theirs_v = [r for r in theirs if r["name"] != "version"]
    assert ours_v == theirs_v, (ours_v, theirs_v)
    return truth, facts


def dump(path, value):
    path.write_text(json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "sharded").mkdir(parents=True)
    singles, (shard1, shard2) = inputs()
    for name, (tensors, meta, args) in singles.items():
        src = OUT / f"{name}.safetensors"
        write_safetensors(src, tensors, meta)
        out = OUT / f"{name}.bin"
        export(src, ["-o", str(out), *args])
        source_tensors, source_meta = read_safetensors(src)
        ties = {k: v for k, v in source_meta.items() if v in source_tensors and k not in source_tensors}
        truth, facts = check(out, source_tensors, source_meta, ties)
        facts["args"] = args
        dump(OUT / f"{name}.bin.expected.json", truth)
        dump(OUT / f"{name}.bin.torch.json", facts)
        print(name, facts["globals"], "old torch:", facts["old_torch_load"])
    sh = OUT / "sharded"
    weight_map = {}
    for i, shard in enumerate((shard1, shard2)):
        fname = f"model-0000{i + 1}-of-00002.safetensors"
        write_safetensors(sh / fname, shard, {"format": "pt"})
        weight_map.update({n: fname for n, _ in shard})
    total = sum(len(raw(t)) for s in (shard1, shard2) for _, t in s)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (sh / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    export(sh / "model.safetensors.index.json", [])
    out_index = json.loads((sh / "pytorch_model.bin.index.json").read_text())
    assert set(out_index["weight_map"]) == set(weight_map), out_index
    for i in (1, 2):
        src = sh / f"model-0000{i}-of-00002.safetensors"
        out = sh / f"pytorch_model-0000{i}-of-00002.bin"
        source_tensors, _ = read_safetensors(src)
        truth, facts = check(out, source_tensors, {}, {})
        assert all(out_index["weight_map"][n] == out.name for n in truth)
        dump(sh / f"{out.name}.expected.json", truth)
        dump(sh / f"{out.name}.torch.json", facts)
    print("sharded", sorted(out_index["weight_map"].items()))


if __name__ == "__main__":
    sys.exit(main())
