#!/usr/bin/env python3
"""The Python reference of `cargo bench --bench stats_cli`: what `ckptscope stats` prints for one
tensor (count, finite, NaN, +Inf, -Inf, zeros, min, max, mean, std, rms, the percentiles 1, 5,
25, 50, 75, 95, 99 and a 64-bin histogram over [min, max]), computed with NumPy.

    python3 tests/gen/stats_bench.py FILE KIND [TENSOR]

KIND says how the tensor `TENSOR` (default `t`) becomes a float32 array in memory:

- `f32`: `safetensors.safe_open(FILE, "np").get_tensor(TENSOR)`;
- `bf16`: NumPy has no bfloat16 (and `safe_open(..., "np")` refuses BF16 without ml_dtypes),
  so the bytes are mapped as uint16 and widened to float32 by a shift;
- `gguf`: `gguf.GGUFReader` + `gguf.quants.dequantize` of the whole tensor.

NumPy is given its best chance rather than the shortest script: moments, counts and the
histogram are taken over chunks of 4 Mi elements (float64 sums, no whole-array temporaries), and
the exact percentiles (`inverted_cdf`: the smallest value with at least p% of the values at or
below it) come from one in-place `partition` of the finite values. Prints the figures as one JSON
line, then the seconds taken after the imports (reading the tensor included).
"""

import json
import math
import sys
import time

import numpy as np

PERCENTILES = [1, 5, 25, 50, 75, 95, 99]
BINS = 64
CHUNK = 1 << 22


def load(path, kind, name):
    if kind == "f32":
        from safetensors import safe_open

        with safe_open(path, "np") as f:
            return f.get_tensor(name).reshape(-1)
    if kind == "bf16":
        import struct

        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            b, e = json.loads(f.read(n))[name]["data_offsets"]
        raw = np.memmap(path, dtype=np.uint16, mode="r", offset=8 + n + b, shape=((e - b) // 2,))
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if kind == "gguf":
        import gguf

        t = next(t for t in gguf.GGUFReader(path).tensors if t.name == name)
        q = gguf.GGMLQuantizationType(t.tensor_type)
        return gguf.quants.dequantize(np.asarray(t.data), q).reshape(-1)
    raise SystemExit(f"unknown kind {kind}")


def figures(x):
    """The figures of the float32 vector `x` (which may be reordered)."""
    count = x.size
    nan = pos = neg = zeros = finite = 0
    total = total_sq = 0.0
    lo, hi = math.inf, -math.inf
    for i in range(0, count, CHUNK):
        c = x[i:i + CHUNK]
        f = c[np.isfinite(c)] if not np.isfinite(c).all() else c
        nan += int(np.isnan(c).sum())
        pos += int(np.isposinf(c).sum())
        neg += int(np.isneginf(c).sum())
        zeros += int(np.count_nonzero(f == 0))
        finite += f.size
        if f.size:
            d = f.astype(np.float64)
            total += float(d.sum())
            total_sq += float(np.dot(d, d))
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    out = {"count": count, "finite": finite, "nan": nan, "pos_inf": pos, "neg_inf": neg,
           "zeros": zeros}
    if not finite:
        return out
    mean = total / finite
    rng = (lo, hi) if lo < hi else (lo - 0.5, hi + 0.5)
    counts = np.zeros(BINS, dtype=np.int64)
    for i in range(0, count, CHUNK):
        c = x[i:i + CHUNK]
        counts += np.histogram(c[np.isfinite(c)], bins=BINS, range=rng)[0]
    fin = x if finite == count else x[np.isfinite(x)]
    ranks = [min(max(math.ceil(p / 100 * finite) - 1, 0), finite - 1) for p in PERCENTILES]
    fin.partition(sorted(set(ranks)))
    pct = [float(fin[r]) for r in ranks]
    out.update(min=lo, max=hi, mean=mean, std=math.sqrt(max(total_sq / finite - mean * mean, 0.0)),
               rms=math.sqrt(total_sq / finite), percentiles=pct,
               histogram=[int(c) for c in counts])
    return out


def main():
    path, kind = sys.argv[1], sys.argv[2]
    name = sys.argv[3] if len(sys.argv) > 3 else "t"
    t0 = time.perf_counter()
    x = load(path, kind, name)
    if not x.flags.writeable:
        x = x.copy()
    result = figures(x)
    seconds = time.perf_counter() - t0
    print(json.dumps(result))
    print(seconds)


if __name__ == "__main__":
    main()
