#!/usr/bin/env python3
"""The Python reference of `cargo bench --bench gguf`: statistics and a 256-bin histogram of
one GGUF tensor with the `gguf` package (`GGUFReader` + `gguf.quants.dequantize`) and NumPy.

    python3 tests/gen/gguf_bench.py FILE.gguf [TENSOR]

Dequantizes in chunks of rows (64 MiB of blocks at a time) so memory stays bounded: one pass
for min / max / mean / std, a second for the histogram over [min, max] (ckptscope also makes
two passes). Prints the seconds taken, file opening included.
"""

import sys
import time

import numpy as np

import gguf

t0 = time.perf_counter()
reader = gguf.GGUFReader(sys.argv[1])
name = sys.argv[2] if len(sys.argv) > 2 else "t"
tensor = next(t for t in reader.tensors if t.name == name)
qtype = gguf.GGMLQuantizationType(tensor.tensor_type)
raw = np.asarray(tensor.data)  # (rows, row_bytes) uint8, memory-mapped
rows = raw.shape[0]
step = max(1, (64 << 20) // raw.shape[1])

n, total, total_sq = 0, 0.0, 0.0
lo, hi = np.inf, -np.inf
for r in range(0, rows, step):
    x = gguf.quants.dequantize(raw[r:r + step], qtype)
    x = x[np.isfinite(x)]
    n += x.size
    total += float(x.sum(dtype=np.float64))
    total_sq += float(np.square(x, dtype=np.float64).sum())
    lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
mean = total / n
std = max(total_sq / n - mean * mean, 0.0) ** 0.5

counts = np.zeros(256, dtype=np.int64)
for r in range(0, rows, step):
    x = gguf.quants.dequantize(raw[r:r + step], qtype)
    counts += np.histogram(x[np.isfinite(x)], bins=256, range=(lo, hi))[0]

print(n, lo, hi, mean, std, file=sys.stderr)
print(time.perf_counter() - t0)
