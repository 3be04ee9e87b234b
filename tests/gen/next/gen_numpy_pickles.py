"""Pickles of NumPy arrays (protocols 2..5, in-band), joblib dumps (plain and wrapped in every
compressor joblib has here) and an object-dtype .npy of plain strings.
Writes tests/fixtures/next/numpy_pickles/.

    $VENVS/misc/bin/python gen_numpy_pickles.py

Naming: an array is named by its path in the pickled structure, dict keys and list/tuple indices
joined by "/" (`encoder/layers/0/weight`). NumPy scalars (np.float32(1.5), ...) are listed too,
shape []; Python ints/floats/strings are not tensors. Truth is read back with pickle.load /
joblib.load and walked the same way.

Per file the truth also has `pickle_globals` (every GLOBAL / STACK_GLOBAL the pickle imports, in
order of first use, from pickletools), `pickle_protocol` (the PROTO opcode) and per tensor
`fortran_order` (arrays stored in Fortran order keep it through pickle).
"""

import io
import os
import pickle
import pickletools

import joblib
import numpy as np

from _truth import out_dir, sample, truth, versions, write_truth

GEN = "gen_numpy_pickles.py"
# Run under NumPy 1.x as well ($VENVS/np1): its pickles name numpy.core.multiarray instead
# of numpy._core.multiarray; those files get the suffix _np1.
SUFFIX = "_np1" if np.__version__.startswith("1.") else ""
VERS = versions("numpy", "joblib", "lz4")
OUT = out_dir("numpy_pickles")


def payload():
    rng = np.random.default_rng(2024)
    fort = np.asfortranarray(sample(rng, np.float32, (3, 5)))
    return {
        "encoder": {
            "layers": [
                {"weight": sample(rng, np.float32, (8, 4)), "bias": sample(rng, np.float32, (8,))},
                {"weight": sample(rng, np.float16, (4, 8)), "bias": sample(rng, np.float16, (4,))},
            ],
            "embedding": sample(rng, np.float64, (6, 3)),
        },
        "ids": sample(rng, np.int64, (10,)),
        "small_ints": sample(rng, np.int8, (2, 3, 2)),
        "u16": sample(rng, np.uint16, (5,)),
        "mask": sample(rng, np.bool_, (7,)),
        "cplx": sample(rng, np.complex64, (2, 2)),
        "big_endian": sample(rng, np.float32, (4,)).astype(">f4"),
        "fortran": fort,
        "zero_d": np.array(3.25, np.float64),
        "empty": np.zeros((0, 4), np.float32),
        "scalar_f32": np.float32(1.5),
        "scalar_i64": np.int64(-7),
        "step": 1200,  # plain Python int: not a tensor
        "name": "run-7",
        "pair": (sample(rng, np.int32, (3,)), sample(rng, np.uint8, (4,))),
    }


def walk(obj, prefix, found):
    if isinstance(obj, dict):
        for k, v in obj.items():
            walk(v, f"{prefix}{k}/", found)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            walk(v, f"{prefix}{i}/", found)
    elif isinstance(obj, np.ndarray):
        found[prefix[:-1]] = truth(
            obj, fortran_order=bool(obj.flags.f_contiguous and not obj.flags.c_contiguous),
            stored_byteorder=("big" if obj.dtype.byteorder == ">" else "little"))
    elif isinstance(obj, np.generic):
        found[prefix[:-1]] = truth(np.asarray(obj), numpy_scalar=True)


class _Recorder(pickle.Unpickler):
    """Records every global the pickle asks for (the library's own find_class hook)."""

    def __init__(self, f):
        super().__init__(f)
        self.globals = []

    def find_class(self, module, name):
        full = f"{module}.{name}"
        if full not in self.globals:
            self.globals.append(full)
        return super().find_class(module, name)


def pickle_info(data):
    proto = None
    for op, arg, _ in pickletools.genops(data):
        if op.name == "PROTO":
            proto = arg
            break
    r = _Recorder(io.BytesIO(data))
    r.load()
    return {"pickle_protocol": proto, "pickle_globals": r.globals}


def write_pickles():
    obj = payload()
    for proto in (2, 3, 4, 5):
        name = f"arrays_p{proto}{SUFFIX}.pkl"
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=proto)  # in-band: no buffer_callback
        with open(path, "rb") as f:
            data = f.read()
        back = pickle.loads(data)
        found = {}
        walk(back, "", found)
        write_truth(path, found, generator=GEN, library_versions=VERS,
                    naming="path in the pickled structure joined by '/'",
                    metadata={"non_tensor_values": {"step": 1200, "name": "run-7"}},
                    extra=pickle_info(data))


def write_joblib():
    obj = payload()
    variants = [("plain", None), ("zlib3", 3), ("gzip", ("gzip", 3)), ("bz2", ("bz2", 3)),
                ("lzma", ("lzma", 3)), ("xz", ("xz", 3))]
    import importlib.util
    if importlib.util.find_spec("lz4") is not None:  # joblib's lz4 wrapper needs it
        variants.append(("lz4", ("lz4", 3)))
    for label, compress in variants:
        path = os.path.join(OUT, f"model_{label}{SUFFIX}.joblib")
        if compress is None:
            joblib.dump(obj, path)
        else:
            joblib.dump(obj, path, compress=compress)
        back = joblib.load(path)
        found = {}
        walk(back, "", found)
        with open(path, "rb") as f:
            head = f.read(16)
        write_truth(path, found, generator=GEN, library_versions=VERS,
                    naming="path in the pickled structure joined by '/' (NumpyArrayWrapper "
                           "arrays are stored after the pickle, in the same stream)",
                    metadata={"joblib.compress": compress, "first_bytes_hex": head.hex()},
                    extra={"compression": label})


def write_object_npy():
    arr = np.array(["alpha", "beta", "gamma delta", ""], dtype=object)
    path = os.path.join(OUT, "strings_object.npy")
    np.save(path, arr, allow_pickle=True)
    try:
        np.load(path)  # allow_pickle=False is the default
        needs = False
    except ValueError:
        needs = True
    back = np.load(path, allow_pickle=True)
    with open(path, "rb") as f:
        data = f.read()
    off = data.index(b"\n") + 1  # end of the .npy header
    write_truth(path, {}, generator=GEN, library_versions=VERS,
                naming="an object array is a pickle inside the .npy: no tensor",
                unsupported=["strings_object (dtype object)"],
                metadata={"npy_header": data[:off].decode("latin-1"),
                          "values": back.tolist(), "needs_allow_pickle": needs},
                extra=pickle_info(data[off:]))


if __name__ == "__main__":
    write_pickles()
    if SUFFIX:
        write_joblib_np1 = [("plain", None), ("zlib3", 3)]
        obj = payload()
        for label, compress in write_joblib_np1:
            path = os.path.join(OUT, f"model_{label}{SUFFIX}.joblib")
            joblib.dump(obj, path, compress=compress or 0)
            found = {}
            walk(joblib.load(path), "", found)
            write_truth(path, found, generator=GEN, library_versions=VERS,
                        naming="path in the pickled structure joined by '/'",
                        metadata={"joblib.compress": compress}, extra={"compression": label})
    else:
        write_joblib()
        write_object_npy()
