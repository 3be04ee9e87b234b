#!/usr/bin/env python3
"""Writes the cross-format fixtures of tests/fixtures/xformat/: a tiny Llama-shaped Hugging Face
state dict as safetensors, and the same weights as llama.cpp would ship them in GGUF (names of
llama.cpp, Q/K rows permuted as convert_hf_to_gguf.py permutes them), in F32 and quantized to
Q8_0 and Q4_0 with the real `gguf` package. The ground truth is the quantization error of every
tensor, computed here in NumPy from `gguf.quants.dequantize` after undoing the permutation.

    /work/venv/bin/pip install gguf numpy safetensors
    /work/venv/bin/python tests/gen/xformat.py

Files:
- llama_hf.safetensors: 2 layers, hidden 64, 4 heads of 16 (2 KV heads), FFN 64, vocab 64,
  float32, Hugging Face names (`model.layers.0.self_attn.q_proj.weight`...), plus an old-style
  `rotary_emb.inv_freq` buffer that llama.cpp drops (so one tensor stays unpaired).
- llama_f32.gguf, llama_q8_0.gguf, llama_q4_0.gguf: general.architecture = llama with
  llama.attention.head_count = 4 and head_count_kv = 2; matrices in the named type, the 1-D
  norms kept in F32 as llama.cpp keeps them.
- xformat.truth.json: for each GGUF file, every pair (Hugging Face name, GGUF name, ggml type,
  shape in PyTorch order) with max |a-b|, mean |a-b|, rel L2 = |a-b|/|a|, cosine, the count of
  differing elements, min and max of a-b, and a 20-bin histogram of a-b over [min, max]
  (a = safetensors, b = GGUF dequantized, in float64).
"""

import json
import os

import numpy as np
from safetensors.numpy import save_file

import gguf
from gguf import GGMLQuantizationType as Q

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "xformat")
rng = np.random.default_rng(1604)

LAYERS, HIDDEN, HEADS, KV_HEADS, FFN, VOCAB = 2, 64, 4, 2, 64, 64
HEAD_DIM = HIDDEN // HEADS
BINS = 20


def permute(w, n_head, n_head_kv):
    """LlamaModel.permute of llama.cpp's convert_hf_to_gguf.py: the rotary halves of each head
    interleaved (HF rotates pairs (i, i + d/2), GGML pairs (2i, 2i + 1))."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def unpermute(w, n_head):
    return (
        w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def state_dict():
    sd = {}
    f = lambda *shape, s=0.05: rng.normal(0.0, s, shape).astype(np.float32)
    sd["model.embed_tokens.weight"] = f(VOCAB, HIDDEN, s=0.5)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = (1.0 + f(HIDDEN, s=0.1)).astype(np.float32)
        sd[p + "self_attn.q_proj.weight"] = f(HEADS * HEAD_DIM, HIDDEN)
        sd[p + "self_attn.k_proj.weight"] = f(KV_HEADS * HEAD_DIM, HIDDEN)
        sd[p + "self_attn.v_proj.weight"] = f(KV_HEADS * HEAD_DIM, HIDDEN)
        sd[p + "self_attn.o_proj.weight"] = f(HIDDEN, HEADS * HEAD_DIM)
        sd[p + "post_attention_layernorm.weight"] = (1.0 + f(HIDDEN, s=0.1)).astype(np.float32)
        sd[p + "mlp.gate_proj.weight"] = f(FFN, HIDDEN)
        sd[p + "mlp.up_proj.weight"] = f(FFN, HIDDEN)
        sd[p + "mlp.down_proj.weight"] = f(HIDDEN, FFN)
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = (
        1.0 / 10000 ** (np.arange(0, HEAD_DIM, 2, dtype=np.float32) / HEAD_DIM)
    ).astype(np.float32)
    sd["model.norm.weight"] = (1.0 + f(HIDDEN, s=0.1)).astype(np.float32)
    sd["lm_head.weight"] = f(VOCAB, HIDDEN, s=0.5)
    return sd


LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    top = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf in top:
        return top[hf]
    parts = hf.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["model", "layers"]:
        rest = LAYER_NAMES.get(parts[3])
        if rest:
            return f"blk.{parts[2]}.{rest}"
    return None


def to_gguf(hf, w):
    if hf.endswith("self_attn.q_proj.weight"):
        return permute(w, HEADS, HEADS)
    if hf.endswith("self_attn.k_proj.weight"):
        return permute(w, HEADS, KV_HEADS)
    return w


def check_permutation():
    w = rng.normal(size=(KV_HEADS * HEAD_DIM, 3))
    assert np.array_equal(unpermute(permute(w, HEADS, KV_HEADS), KV_HEADS), w)
    # Row r of a permuted head is row (r % 2) * d/2 + r // 2 of the original one.
    d = HEAD_DIM
    rows = np.arange(d)
    assert np.array_equal(permute(rows[:, None], 1, None)[:, 0], (rows % 2) * (d // 2) + rows // 2)


def heads_of(hf):
    if hf.endswith("self_attn.q_proj.weight"):
        return HEADS
    if hf.endswith("self_attn.k_proj.weight"):
        return KV_HEADS
    return None


def write_gguf(path, sd, qtype, file_type):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(file_type)
    stored = {}
    for hf, value in sd.items():
        name = gguf_name(hf)
        if name is None:
            continue
        data = np.ascontiguousarray(to_gguf(hf, value))
        if qtype == Q.F32 or data.ndim == 1:
            w.add_tensor(name, data)
            stored[name] = ("F32", data.astype(np.float32))
        else:
            q = gguf.quants.quantize(data, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)
            back = gguf.quants.dequantize(q, qtype).astype(np.float32).reshape(data.shape)
            stored[name] = (qtype.name, back)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


def measures(a, b):
    a = a.astype(np.float64).reshape(-1)
    b = b.astype(np.float64).reshape(-1)
    d = a - b
    na, nb, nd = np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(d)
    lo, hi = float(d.min()), float(d.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    scale = BINS / (hi - lo)
    idx = np.clip(np.floor((d - lo) * scale), 0, BINS - 1).astype(np.int64)
    hist = np.bincount(idx, minlength=BINS)
    return {
        "max_abs_diff": float(np.abs(d).max()),
        "mean_abs_diff": float(np.abs(d).mean()),
        "rel_l2": float(nd / na) if na > 0 else 0.0,
        "cosine": float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else 1.0,
        "differing": int(np.count_nonzero(d)),
        "count": int(d.size),
        "min_diff": float(d.min()),
        "max_diff": float(d.max()),
        "histogram": {"lo": lo, "hi": hi, "counts": [int(c) for c in hist]},
    }


def main():
    check_permutation()
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    hf_path = os.path.join(OUT, "llama_hf.safetensors")
    save_file(sd, hf_path, metadata={"format": "pt"})
    os.chmod(hf_path, 0o644)
    truth = {
        "n_head": HEADS,
        "n_head_kv": KV_HEADS,
        "unpaired_hf": [n for n in sd if gguf_name(n) is None],
        "files": {},
    }
    for file, qtype, ftype in [
        ("llama_f32.gguf", Q.F32, 0),
        ("llama_q8_0.gguf", Q.Q8_0, 7),
        ("llama_q4_0.gguf", Q.Q4_0, 2),
    ]:
        stored = write_gguf(os.path.join(OUT, file), sd, qtype, ftype)
        pairs = []
        for hf, a in sd.items():
            name = gguf_name(hf)
            if name is None:
                continue
            ggml, b = stored[name]
            n = heads_of(hf)
            if n is not None:
                b = unpermute(b, n)
            pairs.append(
                {
                    "hf": hf,
                    "gguf": name,
                    "ggml_type": ggml,
                    "shape": list(a.shape),
                    "heads": n,
                    **measures(a, b),
                }
            )
        truth["files"][file] = pairs
    with open(os.path.join(OUT, "xformat.truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
