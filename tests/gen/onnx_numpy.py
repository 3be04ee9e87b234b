"""Writes the ONNX and NumPy fixtures of tests/onnx.rs and tests/numpy.rs, with ground truth.

Run from the repository root with a Python that has numpy and onnx (onnx brings ml_dtypes):

    /work/venv/bin/pip install onnx
    /work/venv/bin/python tests/gen/onnx_numpy.py

Every file is written by the real library (onnx.save / numpy.save / savez / savez_compressed /
numpy.lib.format.write_array), and read back by it for the truth in NAME.expected.json:

    {"tensors": {name: {"dtype", "shape", "sha256", "values", "min", "max", "mean"}},
     "unsupported": [names listed but not read], "metadata": {key: value}}

`sha256` is of the C-order little-endian bytes (what ckptscope's gather packs), `values` the
first four elements in C order as floats (magnitudes for complex), min/max/mean over the finite
values as float64. Deterministic: a fixed seed, no timestamps.
"""

import hashlib
import json
import os
import zipfile

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")
rng = np.random.default_rng(16)


def ckpt_dtype(a):
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
        np.dtype(ml_dtypes.bfloat16): "BF16",
        np.dtype(ml_dtypes.float8_e4m3fn): "F8_E4M3",
        np.dtype(ml_dtypes.float8_e5m2): "F8_E5M2",
        np.dtype(ml_dtypes.float8_e4m3fnuz): "F8_E4M3FNUZ",
        np.dtype(ml_dtypes.float8_e5m2fnuz): "F8_E5M2FNUZ",
    }
    return names[a.dtype.newbyteorder("=")]


def truth(a):
    """Ground truth of one array as loaded by its library."""
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
    flat = le.reshape(-1)
    if np.iscomplexobj(flat):
        num = np.abs(flat).astype(np.float64)
    else:
        num = flat.astype(np.float64)
    fin = num[np.isfinite(num)]
    return {
        "dtype": ckpt_dtype(a),
        "shape": list(a.shape),
        "sha256": hashlib.sha256(le.tobytes()).hexdigest(),
        "values": [float(v) for v in num[:4]],
        "min": float(fin.min()) if fin.size else None,
        "max": float(fin.max()) if fin.size else None,
        "mean": float(fin.mean()) if fin.size else None,
    }


def write_truth(path, tensors, unsupported=(), metadata=None):
    doc = {
        "tensors": {k: truth(v) for k, v in sorted(tensors.items())},
        "unsupported": sorted(unsupported),
        "metadata": metadata or {},
    }
    with open(path + ".expected.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def sample(dtype, shape):
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


# ---------------------------------------------------------------- ONNX


def model(initializers, name, metadata):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="add"),
    ]
    graph = helper.make_graph(nodes, name, [x], [y], initializer=initializers)
    m = helper.make_model(
        graph,
        producer_name="ckptscope-tests",
        producer_version="1.0",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        doc_string="fixture " + name,
    )
    m.model_version = 3
    m.domain = "dev.ckptscope"
    helper.set_model_props(m, metadata)
    onnx.checker.check_model(m)
    return m


def onnx_metadata(m):
    out = {
        "onnx.ir_version": str(m.ir_version),
        "onnx.producer_name": m.producer_name,
        "onnx.producer_version": m.producer_version,
        "onnx.domain": m.domain,
        "onnx.model_version": str(m.model_version),
        "onnx.doc_string": m.doc_string,
        "onnx.opset_import": ", ".join(
            f"{o.domain or 'ai.onnx'}={o.version}" for o in m.opset_import
        ),
        "onnx.graph_name": m.graph.name,
        "onnx.nodes": str(len(m.graph.node)),
    }
    out.update({p.key: p.value for p in m.metadata_props})
    return out


def loaded_arrays(path, load_external=True):
    m = onnx.load(path, load_external_data=load_external)
    arrays = {}
    for t in m.graph.initializer:
        arrays[t.name] = numpy_helper.to_array(t, base_dir=os.path.dirname(path))
    return m, arrays


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def gen_onnx():
    d = os.path.join(ROOT, "onnx")
    os.makedirs(d, exist_ok=True)
    core = {
        "w": sample(np.float32, (3, 4)),
        "b": sample(np.float32, (4,)),
    }

    # raw_data for every type ckptscope reads.
    raw = dict(core)
    for dt in [np.float16, np.float64, np.int8, np.uint8, np.int16, np.uint16, np.int32,
               np.int64, np.uint32, np.uint64, np.bool_, np.complex64]:
        raw["raw_" + np.dtype(dt).name] = sample(dt, (2, 3))
    for dt in [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
               ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz]:
        raw["raw_" + np.dtype(dt).name] = sample(np.float32, (2, 3)).astype(dt)
    raw["scalar"] = np.array(2.5, dtype=np.float32)
    raw["empty"] = np.zeros((0, 5), dtype=np.float32)
    inits = [numpy_helper.from_array(v, k) for k, v in raw.items()]
    inits.append(helper.make_tensor("text", TensorProto.STRING, [2], [b"a", b"bc"]))
    inits.append(helper.make_tensor("nibbles", TensorProto.INT4, [4], [1, -2, 3, -4]))
    m = model(inits, "raw", {"author": "ckptscope", "license": "MIT"})
    path = os.path.join(d, "raw.onnx")
    onnx.save(m, path)
    m, arrays = loaded_arrays(path)
    arrays = {k: v for k, v in arrays.items() if k not in ("text", "nibbles")}
    write_truth(path, arrays, ["text", "nibbles"], onnx_metadata(m))

    # Typed fields (float_data, int32_data, int64_data, uint64_data, double_data).
    typed = dict(core)
    inits = [helper.make_tensor(k, TensorProto.FLOAT, v.shape, v.reshape(-1).tolist())
             for k, v in core.items()]
    kinds = [
        ("t_double", TensorProto.DOUBLE, np.float64),
        ("t_int64", TensorProto.INT64, np.int64),
        ("t_int32", TensorProto.INT32, np.int32),
        ("t_int16", TensorProto.INT16, np.int16),
        ("t_int8", TensorProto.INT8, np.int8),
        ("t_uint8", TensorProto.UINT8, np.uint8),
        ("t_uint16", TensorProto.UINT16, np.uint16),
        ("t_uint32", TensorProto.UINT32, np.uint32),
        ("t_uint64", TensorProto.UINT64, np.uint64),
        ("t_bool", TensorProto.BOOL, np.bool_),
        ("t_float16", TensorProto.FLOAT16, np.float16),
        ("t_complex64", TensorProto.COMPLEX64, np.complex64),
    ]
    for name, onnx_type, dt in kinds:
        v = sample(dt, (2, 3))
        vals = v.reshape(-1).tolist()
        inits.append(helper.make_tensor(name, onnx_type, v.shape, vals))
    bf = sample(np.float32, (5,)).astype(ml_dtypes.bfloat16)
    inits.append(helper.make_tensor("t_bfloat16", TensorProto.BFLOAT16, bf.shape,
                                    bf.astype(np.float32).tolist()))
    m = model(inits, "typed", {"kind": "typed fields"})
    path = os.path.join(d, "typed.onnx")
    # Two encodings protobuf never writes but every reader accepts, so written by hand and
    # appended to the graph (fields of a message may come in any order and pieces): a float
    # field unpacked (one fixed32 per value) and an int64 field packed in two pieces.
    loose = b"\x08\x03\x10\x01" + b"".join(
        b"\x25" + np.float32(x).tobytes() for x in [1.5, -2.0, 4.25]
    ) + b"\x42\x0at_unpacked"
    split = b"\x08\x04\x10\x07" + b"\x3a\x02\x01\x02" + b"\x3a\x03\x03\xac\x02" + b"\x42\x07t_split"
    graph = m.graph.SerializeToString()
    for extra in [loose, split]:
        graph += b"\x2a" + bytes([len(extra)]) + extra
    rest = onnx.ModelProto()
    rest.CopyFrom(m)
    rest.ClearField("graph")
    data = rest.SerializeToString() + b"\x3a" + varint(len(graph)) + graph
    with open(path, "wb") as f:
        f.write(data)
    m, arrays = loaded_arrays(path)
    write_truth(path, arrays, [], onnx_metadata(m))

    # External data: every initializer in one side file, written by onnx.save.
    ext = {k: sample(np.float32, s) for k, s in [("w", (3, 4)), ("b", (4,))]}
    ext["e_int64"] = sample(np.int64, (7,))
    ext["e_f16"] = sample(np.float16, (2, 2, 2))
    inits = [numpy_helper.from_array(v, k) for k, v in ext.items()]
    m = model(inits, "external", {"weights": "external"})
    path = os.path.join(d, "external.onnx")
    for old in [path, os.path.join(d, "external.data")]:
        if os.path.exists(old):
            os.remove(old)
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external.data", size_threshold=0, convert_attribute=False)
    m, arrays = loaded_arrays(path)
    on_disk = onnx.load(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in on_disk.graph.initializer)
    write_truth(path, arrays, [], onnx_metadata(onnx.load(path, load_external_data=False)))


# ---------------------------------------------------------------- NumPy


def gen_numpy():
    d = os.path.join(ROOT, "numpy")
    os.makedirs(d, exist_ok=True)
    arrays = {}
    for code in ["<f2", "<f4", "<f8", ">f4", ">f8", ">i8", ">u2", "|b1", "|i1", "|u1", "<i2",
                 "<u2", "<i4", "<u4", "<i8", "<u8", "<c8", ">c8"]:
        arrays["dtype_" + code.replace("<", "le_").replace(">", "be_").replace("|", "")] = \
            sample(np.dtype(code).newbyteorder("="), (3, 5)).astype(code)
    arrays["fortran_2d"] = np.asfortranarray(sample(np.float32, (4, 6)))
    arrays["fortran_3d"] = np.asfortranarray(sample(np.int16, (2, 3, 4)))
    arrays["fortran_be"] = np.asfortranarray(sample(np.float64, (3, 2)).astype(">f8"))
    arrays["scalar"] = np.array(-7.25, dtype=np.float64)
    arrays["empty"] = np.zeros((0, 3), dtype=np.float32)
    for name, a in arrays.items():
        path = os.path.join(d, name + ".npy")
        np.save(path, a)
        back = np.load(path)
        assert back.dtype == a.dtype and back.flags.f_contiguous == a.flags.f_contiguous
        write_truth(path, {"array": back})
    for version in [(2, 0), (3, 0)]:
        a = sample(np.float32, (2, 7))
        path = os.path.join(d, f"version_{version[0]}.npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)
        write_truth(path, {"array": np.load(path)})
    for name, a in [
        ("unicode", np.array(["ab", "cde"])),
        ("structured", np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8")])),
        ("complex128", np.arange(4, dtype=np.complex128)),
        ("datetime", np.array(["2026-01-01"], dtype="datetime64[D]")),
    ]:
        path = os.path.join(d, name + ".npy")
        np.save(path, a)
        write_truth(path, {}, ["array"])
    path = os.path.join(d, "object.npy")
    np.save(path, np.array([{"a": 1}, [1, 2]], dtype=object), allow_pickle=True)
    write_truth(path, {}, [])

    members = {
        "weight": sample(np.float32, (8, 4)),
        "bias": sample(np.float16, (4,)),
        "steps": sample(np.int64, (3,)),
        "big_endian": sample(np.float32, (5,)).astype(">f4"),
        "fortran": np.asfortranarray(sample(np.float32, (3, 4))),
        "flag": np.array(True),
    }
    for name, save in [("stored", np.savez), ("deflated", np.savez_compressed)]:
        path = os.path.join(d, name + ".npz")
        save(path, **members)
        with np.load(path) as z:
            back = {k: z[k] for k in z.files}
        with zipfile.ZipFile(path) as z:
            methods = {i.compress_type for i in z.infolist()}
        assert methods == ({zipfile.ZIP_STORED} if name == "stored" else {zipfile.ZIP_DEFLATED})
        write_truth(path, back)
    # An archive with an object member: numbers read, the pickle left to the scan.
    path = os.path.join(d, "with_object.npz")
    np.savez(path, numbers=members["weight"], things=np.array([1, "x"], dtype=object))
    with np.load(path, allow_pickle=False) as z:
        write_truth(path, {"numbers": z["numbers"]}, ["things"])


if __name__ == "__main__":
    gen_onnx()
    gen_numpy()
