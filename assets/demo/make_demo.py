#!/usr/bin/env python3
"""Builds the demo family shipped in the binary (Python stdlib + the ckptscope binary).

    python3 assets/demo/make_demo.py target/release/ckptscope

demo-base.pt           a Lightning-style torch.save zip (state_dict with tied lm_head,
                       epoch, global_step, hyper_parameters), written without torch
demo-v1.safetensors    `ckptscope convert` of it (lineage back to the pickle by hash)
demo-v2.safetensors    a "fine-tune" of v1: noise everywhere, a re-initialised head, MLP weights
                       in BF16, an int8-quantised block, ModelSpec keys and a JSON config
"""
import json, math, random, struct, subprocess, sys, zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
random.seed(7)

def gauss_matrix(rows, cols, std):
    return [random.gauss(0.0, std) for _ in range(rows * cols)]

# --- the weights -----------------------------------------------------------------------------
D, V, H = 64, 256, 128
weights = {}  # name -> (shape, values)
weights["embed.weight"] = ((V, D), gauss_matrix(V, D, 0.02))
for l in range(2):
    p = f"layers.{l}"
    weights[f"{p}.attn.qkv.weight"] = ((3 * D, D), gauss_matrix(3 * D, D, 1 / math.sqrt(D)))
    weights[f"{p}.attn.out.weight"] = ((D, D), gauss_matrix(D, D, 1 / math.sqrt(D)))
    weights[f"{p}.mlp.up.weight"] = ((H, D), gauss_matrix(H, D, 1 / math.sqrt(D)))
    weights[f"{p}.mlp.down.weight"] = ((D, H), gauss_matrix(D, H, 1 / math.sqrt(H)))
    weights[f"{p}.norm.weight"] = ((D,), [1.0 + random.gauss(0, 0.05) for _ in range(D)])
weights["final_norm.weight"] = ((D,), [1.0] * D)

def f32(values):
    return struct.pack(f"<{len(values)}f", *values)

# --- demo-base.pt: a torch zip written by hand --------------------------------------------------
class P:
    """A protocol-2 pickle assembler (just the opcodes torch.save uses)."""
    def __init__(self): self.b = bytearray(b"\x80\x02"); self.memo = 0
    def op(self, raw): self.b += raw; return self
    def glob(self, m, n): return self.op(f"c{m}\n{n}\n".encode())
    def s(self, text): t = text.encode(); return self.op(b"X" + struct.pack("<I", len(t)) + t)
    def i(self, v): return self.op(b"J" + struct.pack("<i", v))
    def f(self, v): return self.op(b"G" + struct.pack(">d", v))
    def tup(self, items):
        self.op(b"(")
        for it in items: it(self)
        return self.op(b"t")

storages = []  # (key, bytes)
def tensor(p, shape, data, storage_key=None):
    if storage_key is None:
        storage_key = str(len(storages)); storages.append((storage_key, data))
    numel = len(data) // 4
    stride = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1): stride[k] = stride[k + 1] * shape[k + 1]
    p.glob("torch._utils", "_rebuild_tensor_v2")
    p.op(b"(")
    p.tup([lambda q: q.s("storage"), lambda q: q.glob("torch", "FloatStorage"),
           lambda q: q.s(storage_key), lambda q: q.s("cpu"), lambda q: q.i(numel)])
    p.op(b"Q").i(0)
    p.tup([(lambda v: lambda q: q.i(v))(d) for d in shape])
    p.tup([(lambda v: lambda q: q.i(v))(d) for d in stride])
    p.op(b"\x89").glob("collections", "OrderedDict").op(b")R").op(b"tR")
    return storage_key

p = P()
p.op(b"}(")                                   # root dict
p.s("state_dict").glob("collections", "OrderedDict").op(b")R(")
keys = {}
for name, (shape, values) in weights.items():
    p.s(name); keys[name] = tensor(p, shape, f32(values))
# Tied weights: lm_head views the embedding's storage.
p.s("lm_head.weight"); tensor(p, weights["embed.weight"][0], f32(weights["embed.weight"][1]), keys["embed.weight"])
p.op(b"u")
p.s("epoch").i(2)
p.s("global_step").i(1200)
p.s("hyper_parameters").op(b"}(")
p.s("dim").i(D).s("vocab").i(V).s("layers").i(2).s("lr").f(3e-4).s("optimizer").s("AdamW")
p.op(b"u")
p.op(b"u.")

base = HERE / "demo-base.pt"
with zipfile.ZipFile(base, "w", zipfile.ZIP_STORED) as z:
    z.writestr("demo-base/data.pkl", bytes(p.b))
    z.writestr("demo-base/byteorder", "little")
    for key, data in storages:
        z.writestr(f"demo-base/data/{key}", data)
    z.writestr("demo-base/version", "3\n")

# --- demo-v1: converted by ckptscope, then labelled --------------------------------------------
binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/ckptscope"
v1 = HERE / "demo-v1.safetensors"
subprocess.run([binary, "convert", "--force", str(base), "-o", str(v1)], check=True)

def read_st(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]

def write_st(path, meta, tensors):
    """tensors: list of (name, dtype, shape, bytes) in file order."""
    header, off = {"__metadata__": meta}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))

h1, data1 = read_st(v1)
meta1 = dict(h1.pop("__metadata__"))
meta1.update({"version": "1.0", "created": "2026-10-01", "step": "1200",
              "modelspec.title": "ckptscope demo", "modelspec.architecture": "demo-transformer"})
t1 = [(n, e["dtype"], e["shape"], data1[e["data_offsets"][0]:e["data_offsets"][1]])
      for n, e in sorted(h1.items(), key=lambda kv: kv[1]["data_offsets"])]
write_st(v1, meta1, t1)

# --- demo-v2: a fine-tune ---------------------------------------------------------------------
def bf16(values):
    out = bytearray()
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        out += struct.pack("<H", ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF)
    return bytes(out)

tensors2 = []
for name, (shape, values) in weights.items():
    if name == "layers.0.norm.weight":
        continue                                           # removed in v2
    if name.startswith("layers.1.attn.out"):
        new = gauss_matrix(*shape, 1 / math.sqrt(D))        # re-initialised
    else:
        new = [v + random.gauss(0, 0.002) for v in values]  # small update
    if ".mlp." in name:
        tensors2.append((name, "BF16", shape, bf16(new)))
    else:
        tensors2.append((name, "F32", shape, f32(new)))
# An int8-quantised copy of one block with per-row F16 scales.
up = weights["layers.0.mlp.up.weight"][1]
scales = [max(abs(x) for x in up[r * D:(r + 1) * D]) / 127 for r in range(H)]
codes = bytes(((round(up[r * D + c] / scales[r]) + 256) % 256) for r in range(H) for c in range(D))
tensors2.append(("quant.up.codes", "I8", (H, D), codes))
tensors2.append(("quant.up.scale", "F16", (H,), b"".join(struct.pack("<e", s) for s in scales)))
tensors2.append(("layers.1.attn.out.bias", "F32", (D,), f32([0.0] * D)))  # added in v2
order = {"F32": 0, "F16": 1, "BF16": 1, "I8": 2}
tensors2.sort(key=lambda t: (order[t[1]], t[0]))
config = {"model": {"dim": D, "vocab": V, "layers": 2, "mlp_hidden": H},
          "training": {"lr": 1e-4, "steps": 1200, "schedule": "cosine", "data": ["wiki-demo", "code-demo"]}}
meta2 = {"format": "pt", "version": "2.0", "parent": "demo-v1.safetensors", "created": "2026-11-02",
         "step": "2400", "modelspec.title": "ckptscope demo (fine-tuned)",
         "modelspec.architecture": "demo-transformer", "modelspec.date": "2026-11-02",
         "config": json.dumps(config)}
write_st(HERE / "demo-v2.safetensors", meta2, tensors2)
for f in ["demo-base.pt", "demo-v1.safetensors", "demo-v2.safetensors"]:
    print(f, (HERE / f).stat().st_size, "bytes")
