"""Flax msgpack files (flax.serialization.to_bytes / msgpack_serialize), a chunked one, and an
Orbax checkpoint folder. Writes tests/fixtures/next/flax/.

    $VENVS/jax/bin/python gen_flax.py     (jax[cpu], flax, msgpack, orbax-checkpoint)

Naming: nested map keys joined by "/" (`params/Dense_0/kernel`); lists written by
msgpack_serialize are msgpack arrays, their items named by index (`stack/0`). Read back with
flax.serialization.msgpack_restore. Each tensor has `msgpack_ext`: 1 (ndarray ext: msgpack of
(shape, dtype name, raw bytes)), 3 (NumPy scalar ext, same payload, shape []), 2 (Python complex
ext: msgpack of (real, imag), listed as a C128 scalar) or "chunked" (a
`__msgpack_chunked_array__` map whose `chunks` are 1-D ndarray exts, joined in order and
reshaped to `shape`). Plain msgpack ints, floats, strings and bools are not tensors: they are in
`metadata.non_tensor_leaves`.

Chunking: flax splits arrays above flax.serialization.MAX_CHUNK_SIZE (2**30 bytes). To get a
small file with real chunks, gen_flax sets that module constant to 64 bytes for the one call
to msgpack_serialize, the library's own code path otherwise.
"""

import os
import shutil

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import msgpack  # noqa: E402
import numpy as np  # noqa: E402
from flax import serialization  # noqa: E402

from _truth import jsonable, out_dir, truth, versions, write_truth  # noqa: E402

GEN = "gen_flax.py"
VERS = versions("flax", "jax", "jaxlib", "msgpack", "numpy", "ml_dtypes", "orbax-checkpoint")
OUT = out_dir("flax")


def fresh(name):
    p = os.path.join(OUT, name)
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)
    return p


def raw_ext_codes(data):
    """Walks the raw msgpack (no ext hook) and returns {path: ext code or 'chunked'}."""
    tree = msgpack.unpackb(data, raw=False, strict_map_key=False)
    out = {}

    def walk(x, prefix):
        if isinstance(x, msgpack.ExtType):
            out[prefix[:-1]] = x.code
        elif isinstance(x, dict):
            if "__msgpack_chunked_array__" in x:
                out[prefix[:-1]] = "chunked"
                out[prefix[:-1] + "#chunks"] = len(x["chunks"])
                return
            for k, v in x.items():
                walk(v, f"{prefix}{k}/")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{prefix}{i}/")
    walk(tree, "")
    return out


def restored_truth(data):
    back = serialization.msgpack_restore(data)
    codes = raw_ext_codes(data)
    tensors, plain = {}, {}

    def walk(x, prefix):
        name = prefix[:-1]
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{prefix}{k}/")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{prefix}{i}/")
        elif isinstance(x, (np.ndarray, np.generic)):
            extra = {"msgpack_ext": codes.get(name)}
            if codes.get(name) == "chunked":
                extra["chunks"] = codes[name + "#chunks"]
            tensors[name] = truth(np.asarray(x), **extra)
        elif isinstance(x, complex):
            tensors[name] = truth(np.asarray(x, np.complex128), msgpack_ext=codes.get(name),
                                  note="Python complex: ext 2, msgpack (real, imag) floats")
        else:
            plain[name] = x
    walk(back, "")
    return tensors, plain


def params_tree():
    rng = np.random.default_rng(31)
    return {
        "params": {
            "Dense_0": {"kernel": jnp.asarray(rng.standard_normal((4, 8)), jnp.float32),
                        "bias": jnp.zeros((8,), jnp.float32) + 0.25},
            "Dense_1": {"kernel": jnp.asarray(rng.standard_normal((8, 3)), jnp.bfloat16),
                        "bias": jnp.asarray(rng.standard_normal((3,)), jnp.bfloat16)},
            "Embed_0": {"embedding": jnp.asarray(rng.standard_normal((10, 4)), jnp.float16)},
            "LayerNorm_0": {"scale": np.ones((8,), np.float64),
                            "bias": np.linspace(-1, 1, 8)},
        },
        "batch_stats": {"BatchNorm_0": {"mean": np.arange(5, dtype=np.float32) / 3,
                                        "var": np.ones(5, np.float32)}},
        "ids": np.arange(12, dtype=np.int32).reshape(3, 4),
        "small": np.array([-3, 0, 7], np.int8),
        "mask": np.array([True, False, True]),
        "u64": np.array([1, 2**40], np.uint64),
        "zero_d": np.array(1.5, np.float32),            # 0-d array: ext 1 with shape ()
        "np_scalar": np.float32(2.5),                   # NumPy scalar: ext 3
        "np_int_scalar": np.int64(-9),                  # ext 3
        "cplx": (rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))).astype(
            np.complex64),
        "cplx128": np.array([1 + 2j, -3.5j], np.complex128),
        "py_complex": complex(1.5, -2.0),               # ext 2
        "empty": np.zeros((0, 3), np.float32),
        "step": 1000,                                   # plain msgpack int
        "lr": 0.001,                                    # plain msgpack float
        "name": "run",                                  # plain string
    }


def write_to_bytes():
    tree = params_tree()
    data = serialization.to_bytes(tree)
    p = fresh("params.msgpack")
    with open(p, "wb") as f:
        f.write(data)
    tensors, plain = restored_truth(open(p, "rb").read())
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="map keys joined by '/'",
                metadata={"non_tensor_leaves": plain, "writer": "flax.serialization.to_bytes"})


def write_linen():
    """Parameters of a real flax.linen module (Dense + Conv + BatchNorm), as a training loop
    saves them: to_bytes({"params": ..., "batch_stats": ...})."""
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = nn.Conv(4, (3, 3), name="conv")(x)
            x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
            x = x.reshape((x.shape[0], -1))
            return nn.Dense(5, name="head")(x)

    variables = Net().init(jax.random.PRNGKey(0), jnp.ones((1, 6, 6, 1)))
    p = fresh("linen_variables.msgpack")
    with open(p, "wb") as f:
        f.write(serialization.to_bytes(variables))
    tensors, plain = restored_truth(open(p, "rb").read())
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="map keys joined by '/'",
                metadata={"non_tensor_leaves": plain, "writer": "flax.serialization.to_bytes",
                          "module": "Conv(4,3x3) -> BatchNorm -> Dense(5), init PRNGKey(0)"})


def write_chunked():
    rng = np.random.default_rng(32)
    tree = {
        "big": {"table": rng.standard_normal((6, 5)).astype(np.float32)},   # 120 B: 2 chunks
        "odd": rng.integers(-100, 100, (7, 3)).astype(np.int64),             # 168 B: 3 chunks
        "exact": rng.standard_normal((16,)).astype(np.float32),              # 64 B: one leaf
        "stack": [rng.standard_normal((2, 2)).astype(np.float32),
                  rng.standard_normal((20,)).astype(np.float16)],            # list, 40 B
        "bf16": jnp.asarray(rng.standard_normal((40,)), jnp.bfloat16),      # 80 B: 2 chunks
    }
    old = serialization.MAX_CHUNK_SIZE
    serialization.MAX_CHUNK_SIZE = 64
    try:
        data = serialization.msgpack_serialize(tree)
    finally:
        serialization.MAX_CHUNK_SIZE = old
    p = fresh("chunked.msgpack")
    with open(p, "wb") as f:
        f.write(data)
    tensors, plain = restored_truth(open(p, "rb").read())
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="map keys joined by '/', list items by index",
                metadata={"non_tensor_leaves": plain, "writer":
                          "flax.serialization.msgpack_serialize with MAX_CHUNK_SIZE=64"})


def write_orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:
        print("orbax not installed:", e)
        return
    rng = np.random.default_rng(33)
    tree = {"params": {"dense": {"kernel": rng.standard_normal((4, 3)).astype(np.float32),
                                 "bias": np.arange(3, dtype=np.float32)},
                       "embed": jnp.asarray(rng.standard_normal((5, 2)), jnp.bfloat16)},
            "step": np.int64(7)}
    p = fresh("orbax_checkpoint")
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(os.path.abspath(p), tree)
    ckptr.wait_until_finished()
    back = ckptr.restore(os.path.abspath(p))
    tensors = {}

    def walk(x, prefix):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{prefix}{k}/")
        else:
            tensors[prefix[:-1]] = truth(np.asarray(x))
    walk(back, "")
    files = sorted(os.path.relpath(os.path.join(r, f), p)
                   for r, _, fs in os.walk(p) for f in fs)
    meta = {}
    for name in ("_METADATA", "_CHECKPOINT_METADATA", "_sharding", "manifest.ocdbt"):
        fp = os.path.join(p, name)
        if os.path.exists(fp):
            raw = open(fp, "rb").read()
            try:
                import json
                meta[name] = json.loads(raw)
            except Exception:  # noqa: BLE001 - binary (OCDBT manifest)
                meta[name] = {"bytes": len(raw), "first_bytes_hex": raw[:16].hex()}
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="pytree keys joined by '/' (orbax StandardCheckpointer restore)",
                metadata={"files": files, "orbax_files": jsonable(meta),
                          "expected": "recognised as an Orbax checkpoint (OCDBT + zarr); read "
                                      "if feasible, otherwise refused saying what it is"})


if __name__ == "__main__":
    write_to_bytes()
    write_linen()
    write_chunked()
    write_orbax()
