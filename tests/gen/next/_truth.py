"""Shared ground-truth helpers for the gen_<group>.py generators (stdlib + numpy only).

Every generator writes files with the real library, reads them back with that library and
writes NAME.expected.json beside each file, in the schema of ckptscope's tests/gen/onnx_numpy.py
extended by a few keys:

    {
     "generator": "gen_<group>.py",
     "library_versions": {package: version},
     "naming": "how the tensor names below were obtained from the library",
     "tensors": {name: {"dtype", "shape", "sha256", "values", "min", "max", "mean", ...}},
     "unsupported": [names the library lists but that are not plain tensors],
     "metadata": {key: value}          # what the library reports about the file (config, ...)
    }

`dtype` uses ckptscope's names (F32, BF16, I64, C64, ...); `sha256` is over the C-order
little-endian bytes of the array as the library returns it; `values` the first four elements in
C order as float64 (magnitudes for complex); min/max/mean over the finite values as float64.
Extra per-tensor keys (for example `path` for an HDF5 dataset, `quantization` for TFLite) are
documented by each generator.
"""

import hashlib
import json
import os
import sys

import numpy as np

try:  # bfloat16 / float8 come from ml_dtypes (brought by jax, tensorflow and onnx)
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None

OUT_ROOT = os.environ.get(
    "FIXTURES_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "next")
)


def out_dir(group):
    d = os.path.join(OUT_ROOT, group)
    os.makedirs(d, exist_ok=True)
    return d


def _dtype_names():
    names = {
        np.dtype(np.bool_): "BOOL",
        np.dtype(np.uint8): "U8",
        np.dtype(np.int8): "I8",
        np.dtype(np.uint16): "U16",
        np.dtype(np.int16): "I16",
        np.dtype(np.uint32): "U32",
        np.dtype(np.int32): "I32",
        np.dtype(np.uint64): "U64",
        np.dtype(np.int64): "I64",
        np.dtype(np.float16): "F16",
        np.dtype(np.float32): "F32",
        np.dtype(np.float64): "F64",
        np.dtype(np.complex64): "C64",
        np.dtype(np.complex128): "C128",
    }
    if ml_dtypes is not None:
        names.update(
            {
                np.dtype(ml_dtypes.bfloat16): "BF16",
                np.dtype(ml_dtypes.float8_e4m3fn): "F8_E4M3",
                np.dtype(ml_dtypes.float8_e5m2): "F8_E5M2",
                np.dtype(ml_dtypes.float8_e4m3fnuz): "F8_E4M3FNUZ",
                np.dtype(ml_dtypes.float8_e5m2fnuz): "F8_E5M2FNUZ",
            }
        )
    return names


DTYPE_NAMES = _dtype_names()


def ckpt_dtype(a):
    dt = a.dtype
    if dt.byteorder not in ("=", "|"):
        dt = dt.newbyteorder("=")
    return DTYPE_NAMES[dt]


def le_bytes(a):
    """C-order little-endian bytes of an array."""
    a = np.asarray(a)
    dt = a.dtype
    if dt.kind in "iufc" and dt.itemsize > 1:
        a = a.astype(dt.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(a).tobytes()


_BYTES = {}  # sha256 -> little-endian bytes of every tensor truth() saw (for locate)


def truth(a, **extra):
    """Ground truth of one array as returned by its library."""
    a = np.asarray(a)
    raw = le_bytes(a)
    if len(raw) >= 8:
        _BYTES[hashlib.sha256(raw).hexdigest()] = raw
    flat = np.ascontiguousarray(a).reshape(-1)
    if np.iscomplexobj(flat):
        num = np.abs(flat).astype(np.float64)
    elif flat.dtype == np.bool_:
        num = flat.astype(np.float64)
    else:
        num = flat.astype(np.float64)
    fin = num[np.isfinite(num)]
    doc = {
        "dtype": ckpt_dtype(a),
        "shape": list(a.shape),
        "sha256": hashlib.sha256(le_bytes(a)).hexdigest(),
        "nbytes": int(a.nbytes),
        "values": [float(v) for v in num[:4]],
        "min": float(fin.min()) if fin.size else None,
        "max": float(fin.max()) if fin.size else None,
        "mean": float(fin.mean()) if fin.size else None,
    }
    doc.update(extra)
    return doc


def versions(*names):
    """Installed versions of the given distributions, plus Python's."""
    from importlib import metadata as md

    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = None
    return out


def jsonable(v):
    """Best-effort conversion of library values (numpy scalars, bytes, tuples) to JSON."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return {"bytes_hex": v.hex()}
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, float) and not np.isfinite(v):
        return repr(v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return repr(v)


def locate(tensors, files):
    """Adds `file_offset` to each tensor truth: where its exact little-endian bytes sit in
    one of `files` ({"file", "offset"}) when they occur exactly once over all of them; None
    when they occur nowhere (compressed, chunked, split, encoded, or not little-endian C-order
    in the file); "ambiguous" when more than once. Tensors under 8 bytes are skipped."""
    blobs = []
    for f in files:
        if os.path.isfile(f):
            with open(f, "rb") as fh:
                blobs.append((os.path.basename(f), fh.read()))
    for t in tensors.values():
        raw = _BYTES.get(t.get("sha256"))
        if raw is None or not blobs:
            continue
        hits = []
        for name, data in blobs:
            i = data.find(raw)
            while i != -1 and len(hits) < 2:
                hits.append((name, i))
                i = data.find(raw, i + 1)
        t["file_offset"] = ({"file": hits[0][0], "offset": hits[0][1]} if len(hits) == 1
                            else None if not hits else "ambiguous")


def write_truth(path, tensors, *, generator, library_versions, naming, unsupported=(),
                metadata=None, extra=None, locate_in=None):
    """Writes PATH.expected.json. `tensors` maps names to arrays or to ready truth dicts.
    `locate_in`: files to look the tensors' bytes up in (default: PATH itself if a file)."""
    tensors = {k: (v if isinstance(v, dict) else truth(v)) for k, v in tensors.items()}
    locate(tensors, locate_in if locate_in is not None else [path])
    doc = {
        "generator": generator,
        "library_versions": library_versions,
        "naming": naming,
        "tensors": {
            k: (v if isinstance(v, dict) else truth(v)) for k, v in sorted(tensors.items())
        },
        "unsupported": sorted(unsupported),
        "metadata": jsonable(metadata or {}),
    }
    if extra:
        doc.update(jsonable(extra))
    with open(path + ".expected.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return doc


def sample(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
