"""Ground truth of `ckptscope stats` (tests/cli_stats.rs), computed by NumPy on the arrays the
real libraries read back.

Run from the repository root with the venv (torch, safetensors, numpy, gguf, onnx):

    /work/venv/bin/python tests/gen/stats_truth.py

Without torch, `--complex-only` recomputes only the entries of the complex tensors (the
safetensors C64 read with safetensors.numpy, the ONNX COMPLEX64) in the existing truth.json.

Writes tests/fixtures/stats/special.safetensors (F32, BF16, F16 and I8 tensors with NaN, +Inf,
-Inf and zeros, written by safetensors.torch.save_file) and tests/fixtures/stats/truth.json:

    {FILE: {TENSOR: {SLICE: {"count", "finite", "nan", "pos_inf", "neg_inf", "zeros", "min",
                             "max", "mean", "std", "rms", "percentiles", "histogram"}}}}

FILE is relative to tests/fixtures, SLICE is "" for the whole tensor or the text given to
`--slice` (Python's own indexing syntax, evaluated here as `x[...]`). The statistics are of the
finite values in float64 (complex: magnitudes, as ckptscope measures C64): population std,
percentiles by `np.percentile(..., method="inverted_cdf")` (the smallest value with at least p%
of the values at or below it) at 1, 5, 25, 50, 75, 95, 99, and `np.histogram` with 64 bins over
[min, max]. Every reader is the format's own: safetensors.torch.load_file, torch.load
(weights_only=True), torch.jit.load(...).state_dict(), gguf.GGUFReader +
gguf.quants.dequantize (shapes reversed, slowest first), onnx numpy_helper, np.load.
"""

import json
import os

import numpy as np

try:  # every reader but NumPy's, ONNX's and gguf's needs torch (see main)
    import torch
    from safetensors.torch import load_file, save_file
except ImportError:
    torch = None

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")
PERCENTILES = [1, 5, 25, 50, 75, 95, 99]
BINS = 64


def to_f64(x):
    """float64 values; complex numbers as magnitudes computed in float64 (as ckptscope does:
    the float32 magnitude NumPy gives a complex64 is rounded)."""
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_complex():
            return x.to(torch.complex128).abs().numpy()
        return x.double().numpy() if x.dtype != torch.bool else x.to(torch.float64).numpy()
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return np.abs(x.astype(np.complex128))
    return x.astype(np.float64)


def stats(a):
    flat = a.reshape(-1)
    fin = flat[np.isfinite(flat)]
    out = {
        "count": int(flat.size),
        "finite": int(fin.size),
        "nan": int(np.isnan(flat).sum()),
        "pos_inf": int(np.isposinf(flat).sum()),
        "neg_inf": int(np.isneginf(flat).sum()),
        "zeros": int((fin == 0).sum()),
    }
    if fin.size:
        lo, hi = float(fin.min()), float(fin.max())
        rng = (lo, hi) if lo < hi else (lo - 0.5, hi + 0.5)
        out.update(
            min=lo,
            max=hi,
            mean=float(fin.mean()),
            std=float(fin.std()),
            rms=float(np.sqrt(np.mean(fin * fin))),
            percentiles=[float(np.percentile(fin, p, method="inverted_cdf")) for p in PERCENTILES],
            histogram=[int(c) for c in np.histogram(fin, bins=BINS, range=rng)[0]],
        )
    return out


def measure(arrays, slices=None):
    slices = slices or {}
    out = {}
    for name, x in arrays.items():
        a = to_f64(x)
        entry = {"": stats(a)}
        for s in slices.get(name, []):
            entry[s] = stats(np.asarray(eval("a" + s, {"a": a})))
        out[name] = entry
    return out


def special():
    d = os.path.join(ROOT, "stats")
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(16)
    f32 = torch.randn(100, 50, generator=g)
    f32[3, :7] = 0.0
    f32[5, 1] = float("nan")
    f32[7, 2] = float("inf")
    f32[9, 3] = float("-inf")
    f32[11, 4:6] = float("nan")
    bf16 = (torch.randn(64, 64, generator=g) * 3).to(torch.bfloat16)
    bf16[0, 0] = float("nan")
    bf16[1, 1] = float("inf")
    bf16[2, :10] = 0.0
    f16 = (torch.randn(40, 40, generator=g) * 0.01).to(torch.float16)
    f16[4, 4] = float("-inf")
    i8 = torch.randint(-128, 128, (1000,), generator=g, dtype=torch.int8)
    path = os.path.join(d, "special.safetensors")
    save_file({"f32": f32, "bf16": bf16, "f16": f16, "i8": i8}, path, metadata={"what": "stats"})
    return path


def gguf_arrays(path):
    import gguf

    out = {}
    for t in gguf.GGUFReader(path).tensors:
        q = gguf.GGMLQuantizationType(t.tensor_type)
        shape = [int(x) for x in reversed(t.shape.tolist())]
        raw = np.asarray(t.data)
        if q in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16,
                 gguf.GGMLQuantizationType.I32):
            v = raw.astype(np.float64)
        elif q == gguf.GGMLQuantizationType.Q8_K:
            blocks = raw.view(np.uint8).reshape(-1, 292)
            dd = blocks[:, 0:4].copy().view(np.float32)
            v = dd * blocks[:, 4:260].view(np.int8).astype(np.float32)
        elif q == gguf.GGMLQuantizationType.IQ2_XXS:
            continue
        else:
            v = gguf.quants.dequantize(raw.view(np.uint8), q)
        out[t.name] = np.asarray(v, dtype=np.float64).reshape(shape)
    return out


def onnx_arrays(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer
            if t.data_type not in (onnx.TensorProto.STRING, onnx.TensorProto.INT4)}


def main():
    truth = {}
    sp = special()
    truth["stats/special.safetensors"] = measure(
        load_file(sp), {"f32": ["[3]", "[:, 2]", "[0:20, ::3]", "[-1]"], "bf16": ["[0:3, :]"]})
    truth["st_basic.safetensors"] = measure(
        load_file(os.path.join(ROOT, "st_basic.safetensors")), {"0.weight": ["[1:5, ::2]", "[-1]"]})
    truth["st_dtypes.safetensors"] = measure(load_file(os.path.join(ROOT, "st_dtypes.safetensors")))
    shards = {}
    for f in sorted(os.listdir(os.path.join(ROOT, "sharded"))):
        if f.endswith(".safetensors"):
            shards.update(load_file(os.path.join(ROOT, "sharded", f)))
    truth["sharded"] = measure(shards)
    truth["torch_zip_basic.pt"] = measure(
        torch.load(os.path.join(ROOT, "torch_zip_basic.pt"), weights_only=True))
    truth["torch_views.pt"] = measure(
        {k: v for k, v in torch.load(os.path.join(ROOT, "torch_views.pt"), weights_only=True).items()},
        {"transposed": ["[2, :]", "[:, 1:4]"]})
    truth["torchscript_small.pt"] = measure(
        torch.jit.load(os.path.join(ROOT, "torchscript_small.pt")).state_dict())
    for g in ["gguf/basic.gguf", "gguf/blocks.gguf"]:
        truth[g] = measure(gguf_arrays(os.path.join(ROOT, g)),
                           {"blk.0.attn_q.weight": ["[3, :]", "[:, 5]"],
                            "q4_k.weight": ["[1, 100:300]"]})
    truth["onnx/raw.onnx"] = measure(onnx_arrays(os.path.join(ROOT, "onnx/raw.onnx")))
    truth["onnx/external.onnx"] = measure(onnx_arrays(os.path.join(ROOT, "onnx/external.onnx")))
    with np.load(os.path.join(ROOT, "numpy/deflated.npz")) as z:
        truth["numpy/deflated.npz"] = measure({k: z[k] for k in z.files}, {"fortran": ["[:, 1]"]})
    truth["numpy/fortran_2d.npy"] = measure(
        {"array": np.load(os.path.join(ROOT, "numpy/fortran_2d.npy"))}, {"array": ["[1:3, ::2]"]})
    truth["numpy/dtype_be_f8.npy"] = measure(
        {"array": np.load(os.path.join(ROOT, "numpy/dtype_be_f8.npy"))})
    with open(os.path.join(ROOT, "stats", "truth.json"), "w") as f:
        json.dump(truth, f, sort_keys=True)
        f.write("\n")


def complex_only():
    from safetensors import safe_open

    path = os.path.join(ROOT, "stats", "truth.json")
    with open(path) as f:
        truth = json.load(f)
    with safe_open(os.path.join(ROOT, "st_dtypes.safetensors"), "np") as st:
        c64 = st.get_tensor("c64")
    truth["st_dtypes.safetensors"]["c64"] = measure({"c64": c64})["c64"]
    raw = onnx_arrays(os.path.join(ROOT, "onnx/raw.onnx"))
    truth["onnx/raw.onnx"]["raw_complex64"] = measure(
        {"raw_complex64": raw["raw_complex64"]})["raw_complex64"]
    with open(path, "w") as f:
        json.dump(truth, f, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    import sys

    if "--complex-only" in sys.argv:
        complex_only()
    else:
        main()
