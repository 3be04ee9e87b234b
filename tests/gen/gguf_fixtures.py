#!/usr/bin/env python3
"""Writes the GGUF fixtures of tests/fixtures/gguf/ with the real `gguf` package (llama.cpp's
gguf-py) and records, beside each file, its ground truth read back by `gguf.GGUFReader` and
dequantized by `gguf.quants.dequantize`.

    /work/venv/bin/pip install gguf numpy
    /work/venv/bin/python tests/gen/gguf_fixtures.py

Files:
- basic.gguf (v3, 64-byte alignment): metadata of every value type, nested arrays, a
  tokenizer, a chat template; F32 / F16 / BF16 / I32 tensors and Q8_0 / Q4_0 quantized with
  `gguf.quants.quantize` from known values.
- blocks.gguf (v3): random blocks with sane scales for Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K,
  Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, MXFP4 (ground truth: `gguf.quants.dequantize`; Q8_K, which
  gguf-py does not dequantize, by its definition y = d * q in float32), and one IQ2_XXS tensor
  (listed, not decoded by ckptscope).
- v2.gguf: a small file whose version field is patched from 3 to 2 after writing. Versions 2
  and 3 have the same little-endian layout (v3 only added big-endian files), and GGUFWriter
  writes only v3.

NAME.expected.json: version, alignment, metadata (each key: type, value, or for arrays item
type, length and first items), tensors in file order (name, ggml type, shape in PyTorch order
(GGUF's ne reversed), absolute data offset, bytes, and of the dequantized float32 values: their
SHA-256 (little-endian bytes), min / max / mean / std computed by NumPy in float64, and the
first 8 values).
"""

import hashlib
import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf")
rng = np.random.default_rng(16)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(qtype, n_blocks):
    """Random bytes for n_blocks blocks of qtype, with every scale field replaced by a sane
    positive value (so values are finite and of a plausible size)."""
    _, size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scale = lambda: f16_bytes(rng.uniform(0.001, 0.05, n_blocks))
    if qtype in (Q.Q4_0, Q.Q5_0, Q.Q8_0, Q.IQ4_NL, Q.IQ4_XS, Q.IQ2_XXS):
        b[:, 0:2] = scale()
    elif qtype in (Q.Q4_1, Q.Q5_1, Q.Q4_K, Q.Q5_K):
        b[:, 0:2] = scale()
        b[:, 2:4] = scale()
    elif qtype == Q.Q2_K:
        b[:, 80:82] = scale()
        b[:, 82:84] = scale()
    elif qtype == Q.Q3_K:
        b[:, 108:110] = scale()
    elif qtype == Q.Q6_K:
        b[:, 208:210] = scale()
    elif qtype == Q.Q8_K:
        b[:, 0:4] = np.asarray(rng.uniform(0.001, 0.05, n_blocks), dtype=np.float32).view(np.uint8).reshape(-1, 4)
    elif qtype == Q.MXFP4:
        b[:, 0] = rng.integers(118, 130, n_blocks, dtype=np.uint8)
    return b


def dequantize(data, qtype):
    if qtype == Q.Q8_K:
        blocks = data.reshape(-1, 292)
        d = blocks[:, 0:4].copy().view(np.float32)
        q = blocks[:, 4:260].view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    return gguf.quants.dequantize(data, qtype).reshape(-1).astype(np.float32)


def summary(values):
    v = values.astype(np.float32)
    w = v.astype(np.float64)
    return {
        "sha256": hashlib.sha256(v.astype("<f4").tobytes()).hexdigest(),
        "count": int(v.size),
        "min": float(w.min()),
        "max": float(w.max()),
        "mean": float(w.mean()),
        "std": float(w.std()),
        "first": [float(x) for x in v[:8]],
    }


def truth(path, metadata_truth):
    r = gguf.GGUFReader(path)
    version = int(r.fields["GGUF.version"].parts[-1][0])
    tensors = []
    for t in r.tensors:
        qtype = Q(t.tensor_type)
        entry = {
            "name": t.name,
            "ggml_type": qtype.name,
            "shape": [int(x) for x in reversed(t.shape.tolist())],
            "data_offset": int(t.data_offset),
            "bytes": int(t.n_bytes),
        }
        raw = np.asarray(t.data)
        if qtype in (Q.F32, Q.F16, Q.I32):
            values = raw.reshape(-1).astype(np.float32)
        elif qtype == Q.BF16:
            values = dequantize(raw.view(np.uint8), qtype)
        elif qtype == Q.IQ2_XXS:
            values = None
        else:
            values = dequantize(raw.view(np.uint8), qtype)
        if values is not None:
            entry["values"] = summary(values)
        tensors.append(entry)
    return {
        "version": version,
        "alignment": int(r.alignment),
        "metadata": metadata_truth,
        "tensors": tensors,
    }


def write(name, build, patch_version=None):
    path = os.path.join(OUT, name)
    w = gguf.GGUFWriter(path, arch="llama")
    meta = build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if patch_version is not None:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(int(patch_version).to_bytes(4, "little"))
    doc = truth(path, meta)
    with open(path + ".expected.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(path, os.path.getsize(path), "bytes,", len(doc["tensors"]), "tensors")


TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def basic(w):
    m = {}

    def kv(key, vtype, value, add, item=None, first=None, length=None):
        add(key, value)
        if vtype == "ARRAY":
            m[key] = {"type": "ARRAY", "item": item, "len": length, "first": first}
        else:
            m[key] = {"type": vtype, "value": value}

    # GGUFWriter itself adds general.architecture = "llama" first.
    m["general.architecture"] = {"type": "STRING", "value": "llama"}
    w.add_name("ckptscope GGUF fixture")
    m["general.name"] = {"type": "STRING", "value": "ckptscope GGUF fixture"}
    w.add_file_type(7)
    m["general.file_type"] = {"type": "UINT32", "value": 7}
    w.add_custom_alignment(64)
    m["general.alignment"] = {"type": "UINT32", "value": 64}
    w.add_context_length(4096)
    m["llama.context_length"] = {"type": "UINT32", "value": 4096}
    w.add_head_count(8)
    m["llama.attention.head_count"] = {"type": "UINT32", "value": 8}
    w.add_rope_freq_base(10000.0)
    m["llama.rope.freq_base"] = {"type": "FLOAT32", "value": 10000.0}
    kv("test.u8", "UINT8", 200, w.add_uint8)
    kv("test.i8", "INT8", -100, w.add_int8)
    kv("test.u16", "UINT16", 60000, w.add_uint16)
    kv("test.i16", "INT16", -30000, w.add_int16)
    kv("test.u32", "UINT32", 4000000000, w.add_uint32)
    kv("test.i32", "INT32", -2000000000, w.add_int32)
    kv("test.f32", "FLOAT32", 0.25, w.add_float32)
    kv("test.bool", "BOOL", True, w.add_bool)
    kv("test.string", "STRING", "héllo, GGUF", w.add_string)
    kv("test.u64", "UINT64", 18000000000000000000, w.add_uint64)
    kv("test.i64", "INT64", -9000000000000000000, w.add_int64)
    kv("test.f64", "FLOAT64", 3.141592653589793, w.add_float64)
    kv("test.array_i32", "ARRAY", [1, -2, 3], w.add_array, "INT32", [1, -2, 3], 3)
    kv("test.array_f32", "ARRAY", [0.5, 1.5], w.add_array, "FLOAT32", [0.5, 1.5], 2)
    nested = [[1, 2], [3, 4, 5], [6]]
    kv("test.nested", "ARRAY", nested, w.add_array, "ARRAY", nested, 3)
    big = list(range(1000))
    kv("test.array_big", "ARRAY", big, w.add_array, "INT32", big[:8], 1000)
    tokens = ["<unk>", "<s>", "</s>"] + [f"tok{i}" for i in range(997)]
    w.add_tokenizer_model("llama")
    m["tokenizer.ggml.model"] = {"type": "STRING", "value": "llama"}
    w.add_token_list(tokens)
    m["tokenizer.ggml.tokens"] = {"type": "ARRAY", "item": "STRING", "len": 1000, "first": tokens[:8]}
    scores = [float(-i) for i in range(1000)]
    w.add_token_scores(scores)
    m["tokenizer.ggml.scores"] = {"type": "ARRAY", "item": "FLOAT32", "len": 1000, "first": scores[:8]}
    w.add_bos_token_id(1)
    m["tokenizer.ggml.bos_token_id"] = {"type": "UINT32", "value": 1}
    w.add_chat_template(TEMPLATE)
    m["tokenizer.chat_template"] = {"type": "STRING", "value": TEMPLATE}

    a = (np.arange(8 * 32, dtype=np.float32).reshape(8, 32) - 100.0) / 16.0
    w.add_tensor("token_embd.weight", a)
    w.add_tensor("blk.0.attn_norm.weight", np.linspace(-1, 1, 32, dtype=np.float32))
    w.add_tensor("blk.0.ffn_up.weight", (rng.standard_normal((4, 64)) * 0.1).astype(np.float16))
    bf = rng.standard_normal((3, 32)).astype(np.float32)
    w.add_tensor("blk.0.bf16.weight", gguf.quants.quantize(bf, Q.BF16), raw_dtype=Q.BF16)
    w.add_tensor("blk.0.cube.weight", np.arange(2 * 3 * 32, dtype=np.float32).reshape(2, 3, 32))
    w.add_tensor("blk.0.ids", np.arange(-5, 27, dtype=np.int32))
    x = (rng.standard_normal((16, 64)) * 0.05).astype(np.float32)
    w.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(x, Q.Q8_0), raw_dtype=Q.Q8_0)
    y = (rng.standard_normal((8, 64)) * 0.05).astype(np.float32)
    w.add_tensor("blk.0.attn_k.weight", gguf.quants.quantize(y, Q.Q4_0), raw_dtype=Q.Q4_0)
    return m


BLOCK_TYPES = [Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_K,
               Q.IQ4_NL, Q.IQ4_XS, Q.MXFP4, Q.IQ2_XXS]


def blocks(w):
    m = {"general.architecture": {"type": "STRING", "value": "llama"}}
    for qtype in BLOCK_TYPES:
        block, _ = gguf.GGML_QUANT_SIZES[qtype]
        rows, per_row = 4, 2
        data = random_blocks(qtype, rows * per_row).reshape(rows, -1)
        w.add_tensor(f"{qtype.name.lower()}.weight", data, raw_dtype=qtype)
    return m


def small(w):
    w.add_name("v2 fixture")
    w.add_tensor("w", np.array([[1.0, -2.0], [3.5, 0.0]], dtype=np.float32))
    return {
        "general.architecture": {"type": "STRING", "value": "llama"},
        "general.name": {"type": "STRING", "value": "v2 fixture"},
    }


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write("basic.gguf", basic)
    write("blocks.gguf", blocks)
    write("v2.gguf", small, patch_version=2)
    print("gguf", gguf.__version__ if hasattr(gguf, "__version__") else "?", "numpy", np.__version__, file=sys.stderr)
