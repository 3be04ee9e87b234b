"""Keras 3 (.keras, .weights.h5, sharded .weights.json), legacy Keras-2-style .h5, Lambda-layer
archives, bfloat16 weights, and h5py files exercising the HDF5 features ckptscope's own reader
must handle. Writes tests/fixtures/next/keras/.

    $VENVS/tf/bin/python gen_keras.py      (tensorflow-cpu, keras 3, h5py)

Truth per Keras file (read back by the libraries):
- `tensors`: keyed by the Keras variable path (`variable.path`, e.g. `dense_a/kernel`, optimizer
  state `adam/dense_a_kernel_momentum`), each with `h5_path`, the dataset's HDF5 path inside the
  weights file (`layers/dense_a/vars/0` in Keras 3 files, `model_weights/dense_a/dense_a/kernel`
  in legacy .h5). The pairing of Keras variables with HDF5 datasets is made by content: every
  weight is set to distinct random values before saving and matched by SHA-256 after reading
  the datasets back with h5py, so the pairing is the library's own.
- `metadata`: the config the library reports (`config.json` / `model_config` attribute, the
  `metadata.json` of .keras archives, `keras_version`, `backend`, `training_config`), the
  archive's member list, and `safe_mode_true_loads`: whether keras.saving.load_model(path,
  safe_mode=True) loads the file (False with the exception text when it refuses).
Truth per plain h5py file: keyed by the dataset's HDF5 path without the leading "/", with
`layout` (contiguous / chunked / compact), `chunks`, `compression`, `compression_opts`,
`shuffle`, `fletcher32`, `offset` (file offset of contiguous data, from h5py's get_offset),
`attrs`; `metadata.groups` lists each group with its attrs and `track_order`.
.keras archives embed a `date_saved` timestamp in metadata.json and zip member times, so they
are not byte-identical across runs; their weights are.
"""

import base64
import io
import json
import marshal
import os
import zipfile
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402

from _truth import jsonable, out_dir, truth, versions, write_truth  # noqa: E402

GEN = "gen_keras.py"
VERS = versions("keras", "tensorflow-cpu", "h5py", "numpy", "ml_dtypes")
VERS["hdf5"] = h5py.version.hdf5_version
OUT = out_dir("keras")


def fresh(name):
    p = os.path.join(OUT, name)
    if os.path.isdir(p):
        import shutil
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)
    return p


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    ws = []
    for w in model.get_weights():
        if w.dtype.kind == "f" or str(w.dtype) == "bfloat16":
            ws.append((rng.standard_normal(w.shape) * 0.5).astype(w.dtype))
        elif w.dtype.kind in "iu":
            ws.append(rng.integers(0, 50, w.shape).astype(w.dtype))
        else:
            ws.append(w)
    model.set_weights(ws)


def sequential():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([
        keras.Input((4,), name="features"),
        keras.layers.Dense(8, activation="relu", name="dense_a"),
        keras.layers.Dense(3, activation="softmax", name="dense_b"),
    ], name="small_sequential")
    randomize(m, 11)
    return m


def functional(train=True):
    keras.utils.set_random_seed(2)
    x = keras.Input((6,), name="x")
    ids = keras.Input((3,), dtype="int32", name="ids")
    e = keras.layers.Embedding(10, 4, name="embed")(ids)
    e = keras.layers.Flatten(name="flat")(e)
    h = keras.layers.Dense(5, name="proj")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Concatenate(name="cat")([h, e])
    h = keras.layers.LayerNormalization(name="ln")(h)
    y = keras.layers.Dense(2, name="head")(h)
    m = keras.Model([x, ids], y, name="small_functional")
    randomize(m, 12)
    if train:
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        rng = np.random.default_rng(3)
        m.fit([rng.standard_normal((8, 6)).astype("float32"),
               rng.integers(0, 10, (8, 3)).astype("int32")],
              rng.standard_normal((8, 2)).astype("float32"), epochs=1, batch_size=8, verbose=0)
    return m


def variables_of(model):
    """Keras variable path -> numpy value, for the model's and its optimizer's variables."""
    out = {}
    for v in model.weights:
        out[v.path] = np.asarray(keras.ops.convert_to_numpy(v))
    opt = getattr(model, "optimizer", None)
    if opt is not None and getattr(opt, "built", False):
        for v in opt.variables:
            out[v.path] = np.asarray(keras.ops.convert_to_numpy(v))
    return out


def h5_datasets(f, prefix=""):
    """HDF5 path -> array, for every dataset of an open h5py File/Group (Keras bfloat16
    datasets, tagged with attrs dtype=bfloat16, are viewed as bfloat16 as Keras does)."""
    import ml_dtypes
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            a = obj[()]
            if obj.attrs.get("dtype") == "bfloat16":
                # stored as 2-byte opaque (|V2) data holding the bfloat16 bits
                a = np.asarray(a).view(ml_dtypes.bfloat16)
            out[prefix + name] = (np.asarray(a), obj)
    f.visititems(visit)
    return out


def pair(vars_, dsets):
    """Pairs Keras variables with HDF5 datasets by their bytes (unique by construction)."""
    by_sha = {}
    for path, (a, _) in dsets.items():
        by_sha.setdefault((truth(a)["sha256"], a.shape), []).append(path)
    tensors, unmatched = {}, []
    for name, v in vars_.items():
        key = (truth(v)["sha256"], v.shape)
        cands = by_sha.get(key, [])
        if len(cands) == 1:
            a, ds = dsets[cands[0]]
            tensors[name] = truth(a, h5_path=cands[0], h5_dtype=str(ds.dtype),
                                  h5_attrs=jsonable(dict(ds.attrs)))
        elif len(cands) > 1:
            # identical values (e.g. an optimizer's iteration counter): list all candidates
            a, ds = dsets[cands[0]]
            tensors[name] = truth(a, h5_path_candidates=cands, h5_dtype=str(ds.dtype))
        else:
            unmatched.append(name)
    paired = {t.get("h5_path") for t in tensors.values()}
    for t in tensors.values():
        paired.update(t.get("h5_path_candidates", []))
    extra_ds = sorted(p for p in dsets if p not in paired)
    return tensors, unmatched, extra_ds


def safe_mode_loads(path):
    try:
        keras.saving.load_model(path, safe_mode=True, compile=False)
        return True, None
    except Exception as e:  # noqa: BLE001 - the library's refusal is the truth
        return False, f"{type(e).__name__}: {str(e)[:300]}"


def keras_archive_truth(path, model, naming_note=""):
    with zipfile.ZipFile(path) as z:
        members = [{"name": i.filename, "size": i.file_size, "compress_type": i.compress_type}
                   for i in z.infolist()]
        config = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json"))
        with z.open("model.weights.h5") as wf:
            data = wf.read()
    with h5py.File(io.BytesIO(data), "r") as f:
        dsets = h5_datasets(f)
        tensors, unmatched, extra = pair(variables_of(model), dsets)
        for p in extra:  # datasets not matching any variable (e.g. a seed generator state)
            tensors["<h5>/" + p] = truth(dsets[p][0], h5_path=p)
    ok, why = safe_mode_loads(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=False)
    back = variables_of(loaded)
    for name, t in tensors.items():
        if name in back:
            assert truth(back[name])["sha256"] == t["sha256"], name
    meta.pop("date_saved", None)
    return tensors, unmatched, {
        "config": config, "metadata_json": meta, "members": members,
        "safe_mode_true_loads": ok, "safe_mode_true_error": why,
        "weights_member": "model.weights.h5",
    }


def write_keras_models():
    seq = sequential()
    fun = functional()
    for label, m in (("sequential", seq), ("functional", fun)):
        # Keras 3 archive
        p = fresh(f"{label}.keras")
        m.save(p)
        tensors, unmatched, md = keras_archive_truth(p, m)
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path = dataset inside model.weights.h5",
                    unsupported=unmatched, metadata=md)

        # Keras 3 weights file
        p = fresh(f"{label}.weights.h5")
        m.save_weights(p)
        with h5py.File(p, "r") as f:
            dsets = h5_datasets(f)
            tensors, unmatched, extra = pair(variables_of(m), dsets)
            for x in extra:
                tensors["<h5>/" + x] = truth(dsets[x][0], h5_path=x)
            tops = {k: jsonable(dict(f[k].attrs)) for k in f.keys()}
        m2 = (sequential() if label == "sequential" else functional(train=True))
        m2.load_weights(p)
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path = HDF5 dataset path",
                    unsupported=unmatched,
                    metadata={"top_level_groups": tops, "note": "no model config in a "
                              ".weights.h5: names come from the model's structure"})

        # Legacy Keras-2-style HDF5
        p = fresh(f"{label}_legacy.h5")
        m.save(p)  # keras 3 keeps the legacy h5 writer for .h5 names
        with h5py.File(p, "r") as f:
            dsets = h5_datasets(f)
            tensors, unmatched, extra = pair(variables_of(m), dsets)
            for x in extra:
                tensors["<h5>/" + x] = truth(dsets[x][0], h5_path=x)
            root_attrs = jsonable(dict(f.attrs))
            mw = f["model_weights"]
            mw_attrs = jsonable(dict(mw.attrs))
            per_layer = {k: jsonable(dict(mw[k].attrs)) for k in mw.keys()}
        for k in ("model_config", "training_config"):
            if isinstance(root_attrs.get(k), str):
                root_attrs[k] = json.loads(root_attrs[k])
        loaded = keras.saving.load_model(p, compile=False)
        for name, t in tensors.items():
            bv = variables_of(loaded)
            if name in bv:
                assert truth(bv[name])["sha256"] == t["sha256"], name
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path = HDF5 dataset path "
                           "(model_weights/<layer>/<weight_names entry>; optimizer_weights/...)",
                    unsupported=unmatched,
                    metadata={"root_attrs": root_attrs, "model_weights_attrs": mw_attrs,
                              "layer_attrs": per_layer})

    # Sharded Keras 3 weights (.weights.json + shards)
    p = fresh("functional_sharded.weights.json")
    for f_ in os.listdir(OUT):
        if f_.startswith("functional_sharded_"):
            os.remove(os.path.join(OUT, f_))
    try:
        fun.save_weights(p, max_shard_size=0.0000005)  # in GB: ~537 bytes per shard
        index = json.load(open(p))
        shards = sorted(f_ for f_ in os.listdir(OUT) if f_.startswith("functional_sharded")
                        and f_.endswith(".weights.h5"))
        dsets = {}
        for s in shards:
            with h5py.File(os.path.join(OUT, s), "r") as f:
                for k, (a, ds) in h5_datasets(f).items():
                    dsets[k] = (a, SimpleNamespace(dtype=ds.dtype, attrs=dict(ds.attrs),
                                                   shard=s))
        tensors, unmatched, extra = pair(variables_of(fun), dsets)
        for t in tensors.values():
            hp = t.get("h5_path")
            if hp:
                t["shard"] = dsets[hp][1].shard
        m2 = functional(train=True)
        m2.load_weights(p)
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path inside the shard named by `shard`",
                    unsupported=unmatched, metadata={"index": index, "shards": shards},
                    locate_in=[os.path.join(OUT, s_) for s_ in shards])
    except Exception as e:  # noqa: BLE001
        print("sharded weights not written:", e)


def write_split_layer_names():
    """A legacy .h5 whose `layer_names` attribute exceeds HDF5_OBJECT_HEADER_LIMIT (64512
    bytes), so Keras splits it into layer_names0, layer_names1, ... The attribute is a
    fixed-length string array (S<longest name> x layers), so one 1700-character layer name among
    40 layers (38 of them weightless Activation layers) makes it 68,000 bytes."""
    keras.utils.set_random_seed(4)
    layers = [keras.Input((2,), name="inp"), keras.layers.Dense(3, name="first")]
    layers += [keras.layers.Activation("linear", name=f"act{i:02d}") for i in range(38)]
    layers += [keras.layers.Dense(1, name="last_" + "n" * 1695)]
    m = keras.Sequential(layers, name="long_names")
    randomize(m, 13)
    p = fresh("legacy_split_layer_names.h5")
    m.save(p)
    with h5py.File(p, "r") as f:
        dsets = h5_datasets(f)
        tensors, unmatched, extra = pair(variables_of(m), dsets)
        mw_attr_names = sorted(f["model_weights"].attrs.keys())
        chunks = [k for k in mw_attr_names if k.startswith("layer_names")]
        joined = []
        for k in sorted(chunks, key=lambda s: int(s[len("layer_names"):] or 0)):
            joined += [n.decode() if isinstance(n, bytes) else n
                       for n in f["model_weights"].attrs[k]]
        chunk_sizes = {k: int(f["model_weights"].attrs[k].nbytes) for k in chunks}
    loaded = keras.saving.load_model(p, compile=False)
    assert [l.name for l in loaded.layers] == [l.name for l in m.layers]
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="Keras variable path; h5_path = HDF5 dataset path",
                unsupported=unmatched,
                metadata={"model_weights_attr_names": mw_attr_names,
                          "layer_names_chunks_nbytes": chunk_sizes,
                          "layer_names_joined": joined})


def write_lambda():
    """Two .keras archives with a Lambda layer: arithmetic only, and one whose bytecode
    imports os (calls __import__("os").getpid(), harmless when traced at build time). Truth
    has the marshalled code's names (co_names, recursively), decoded with marshal in the same
    Python as wrote them (3.11 bytecode)."""
    for label, src in (("lambda_arith", "lambda t: t * 2.0 + 1.0"),
                       ("lambda_import_os",
                        'lambda t: t + 0.0 * float(__import__("os").getpid() > 0)')):
        # compiled under a neutral file name so no path of this machine is marshalled
        fn = eval(compile(src, "<ckptscope-fixture>", "eval"))
        keras.utils.set_random_seed(5)
        x = keras.Input((3,), name="x")
        h = keras.layers.Dense(3, name="dense")(x)
        y = keras.layers.Lambda(fn, name="lam")(h)
        m = keras.Model(x, y, name=label)
        randomize(m, 14)
        p = fresh(label + ".keras")
        m.save(p)
        tensors, unmatched, md = keras_archive_truth(p, m)
        lam = [l for l in md["config"]["config"]["layers"] if l["class_name"] == "Lambda"][0]
        fcfg = lam["config"]["function"]
        code_b64 = fcfg["config"]["code"] if isinstance(fcfg, dict) else None
        names = []
        if code_b64:
            code = marshal.loads(base64.b64decode(code_b64))

            def co_names(c):
                out = list(c.co_names)
                for k in c.co_consts:
                    if hasattr(k, "co_names"):
                        out += co_names(k)
                return out
            names = co_names(code)
        md["lambda"] = {"layer": "lam", "function_config": fcfg, "bytecode_names": names,
                        "source": src,
                        "marshal_python": "3.11"}
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path = dataset inside model.weights.h5",
                    unsupported=unmatched, metadata=md)


def load_in_fresh_process(path):
    """keras.saving.load_model(path, safe_mode=True) in a new Python that has not registered
    this generator's custom classes: what a user loading the file gets."""
    import subprocess
    import sys
    code = ("import os,sys; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras\n"
            "try:\n keras.saving.load_model(sys.argv[1], safe_mode=True, compile=False)\n"
            " print('LOADED')\n"
            "except Exception as e:\n print('REFUSED', type(e).__name__, str(e)[:300])\n")
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                       env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    line = [l for l in r.stdout.splitlines() if l.startswith(("LOADED", "REFUSED"))]
    return line[-1] if line else f"no answer (exit {r.returncode})"


def write_custom_object():
    """A .keras holding a custom layer registered with
    keras.saving.register_keras_serializable(package="ckptscope_fixture"): its config entry has
    module / class_name / registered_name pointing outside Keras. Loads in the process that
    registered it; a fresh process cannot resolve the class."""

    @keras.saving.register_keras_serializable(package="ckptscope_fixture")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), name="w", initializer="ones")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    keras.utils.set_random_seed(10)
    x = keras.Input((3,), name="x")
    y = Scale(0.5, name="scale")(keras.layers.Dense(3, name="dense")(x))
    m = keras.Model(x, y, name="custom_object")
    randomize(m, 16)
    p = fresh("custom_object.keras")
    m.save(p)
    tensors, unmatched, md = keras_archive_truth(p, m)
    entry = [l for l in md["config"]["config"]["layers"] if l["name"] == "scale"][0]
    md["custom_layer_entry"] = {k: entry.get(k) for k in ("module", "class_name",
                                                          "registered_name")}
    md["safe_mode_true_loads_fresh_process"] = load_in_fresh_process(p)
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="Keras variable path; h5_path = dataset inside model.weights.h5",
                unsupported=unmatched, metadata=md)
    for label in ("lambda_arith", "lambda_import_os", "sequential"):
        q = os.path.join(OUT, label + ".keras.expected.json")
        if os.path.exists(q):
            doc = json.load(open(q))
            doc["metadata"]["safe_mode_true_loads_fresh_process"] = load_in_fresh_process(
                os.path.join(OUT, label + ".keras"))
            with open(q, "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")


def write_config_attacks():
    """Keras config attacks, rebuilt from the library's own sequential.keras by rewriting its
    config.json as the public proofs of concept do (weights and other members untouched, same
    member order and compression). The referenced functions are harmless (os.getcwd), and
    keras_get_file.keras is never loaded here (it would reach for the network)."""
    base = os.path.join(OUT, "sequential.keras")
    with zipfile.ZipFile(base) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    cfg = json.loads(dict((i.filename, d) for i, d in members)["config.json"])

    def fn_ref(module, name):
        return {"module": module, "class_name": "function", "config": name,
                "registered_name": "function"}

    def with_activation(ref):
        c = json.loads(json.dumps(cfg))
        layer = [l for l in c["config"]["layers"] if l["config"].get("name") == "dense_a"][0]
        layer["config"]["activation"] = ref
        return json.dumps(c).encode()

    cases = {
        "keras_module_os.keras": (
            with_activation(fn_ref("os", "getcwd")), "dangerous",
            "CVE-2025-1550 family: a config entry whose module is `os` (outside Keras); "
            "safe_mode does not stop module/function references", True),
        "keras_get_file.keras": (
            with_activation(fn_ref("keras.utils", "get_file")), "dangerous",
            "CVE-2025-8747: keras.utils.get_file referenced from the config (downloads and "
            "writes files when called)", False),
        "keras_enable_unsafe.keras": (
            with_activation(fn_ref("keras.config", "enable_unsafe_deserialization")),
            "dangerous", "CVE-2025-9906: the config calls enable_unsafe_deserialization, "
            "turning safe_mode off for what follows", True),
        "keras_config_not_json.keras": (
            json.dumps(cfg).encode()[:200], "not scanned",
            "config.json is not JSON (cut at 200 bytes)", True),
    }
    for name, (new_cfg, exp, why, try_load) in cases.items():
        p = fresh(name)
        with zipfile.ZipFile(p, "w") as out:
            for info, data in members:
                out.writestr(info, new_cfg if info.filename == "config.json" else data)
        md = {"expected_verdict": exp, "why": why, "derived_from": "sequential.keras",
              "config_json": new_cfg.decode()}
        if try_load:
            md["safe_mode_true_loads_fresh_process"] = load_in_fresh_process(p)
        write_truth(p, {}, generator=GEN, library_versions=VERS,
                    naming="(weights as in sequential.keras.expected.json)", metadata=md)


def write_bf16():
    keras.utils.set_random_seed(6)
    m = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(6, name="dense_bf16", dtype="bfloat16"),
        keras.layers.Dense(2, name="dense_f32"),
    ], name="bf16_model")
    randomize(m, 15)
    for label, save in (("bf16.keras", m.save), ("bf16.weights.h5", m.save_weights)):
        p = fresh(label)
        save(p)
        if label.endswith(".keras"):
            tensors, unmatched, md = keras_archive_truth(p, m)
        else:
            with h5py.File(p, "r") as f:
                dsets = h5_datasets(f)
                tensors, unmatched, _ = pair(variables_of(m), dsets)
            md = {}
        md["note"] = ("Keras stores bfloat16 weights as an h5py dataset of the bfloat16 bytes "
                      "with attrs dtype='bfloat16'; h5_dtype is how h5py reports the stored type")
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="Keras variable path; h5_path = HDF5 dataset path",
                    unsupported=unmatched, metadata=md)


# ------------------------------------------------------------------ plain h5py files


def attr_types(obj):
    """How each attribute is stored: h5py dtype, and for strings fixed/variable length and
    the character set (h5py.check_string_dtype)."""
    out = {}
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        info = h5py.check_string_dtype(aid.dtype)
        out[name] = {"h5_dtype": str(aid.dtype), "shape": list(aid.shape)}
        if info is not None:
            out[name]["string"] = {"encoding": info.encoding,
                                   "length": info.length,  # None: variable length
                                   "variable_length": info.length is None}
    return out


def ds_truth(ds):
    a = ds[()]
    plist = ds.id.get_create_plist()
    layout = {h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked",
              h5py.h5d.COMPACT: "compact"}[plist.get_layout()]
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    fnames = {h5py.h5z.FILTER_DEFLATE: "deflate", h5py.h5z.FILTER_SHUFFLE: "shuffle",
              h5py.h5z.FILTER_FLETCHER32: "fletcher32", h5py.h5z.FILTER_SZIP: "szip",
              h5py.h5z.FILTER_SCALEOFFSET: "scaleoffset"}
    extra = {"layout": layout, "chunks": list(ds.chunks) if ds.chunks else None,
             "compression": ds.compression, "compression_opts": ds.compression_opts,
             "shuffle": ds.shuffle, "fletcher32": ds.fletcher32,
             "filters_in_order": [fnames.get(f, f) for f in filters],
             "h5_dtype": str(ds.dtype), "attrs": jsonable(dict(ds.attrs)),
             "attr_types": attr_types(ds)}
    if layout == "contiguous":
        extra["offset"] = ds.id.get_offset()
        extra["storage_size"] = ds.id.get_storage_size()
    if layout == "chunked":
        extra["num_chunks"] = ds.id.get_num_chunks()
        extra["chunk_index"] = [
            {"offset": list(ci.chunk_offset), "byte_offset": ci.byte_offset, "size": ci.size,
             "filter_mask": ci.filter_mask}
            for ci in (ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks()))]
    return truth(np.asarray(a), **extra)


def h5_file_truth(path, note):
    tensors, groups = {}, {}
    with h5py.File(path, "r") as f:
        sb = f.id.get_create_plist().get_version()
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                tensors[name] = ds_truth(obj)
            else:
                gcpl = obj.id.get_create_plist()
                groups[name] = {"attrs": jsonable(dict(obj.attrs)),
                                "attr_types": attr_types(obj),
                                "track_order": bool(gcpl.get_link_creation_order()),
                                "members_in_library_order": list(obj.keys())}
        groups["/"] = {"attrs": jsonable(dict(f.attrs)), "attr_types": attr_types(f),
                       "track_order": bool(
                           f["/"].id.get_create_plist().get_link_creation_order()),
                       "members_in_library_order": list(f.keys())}
        f.visititems(visit)
        libver = f.libver
    write_truth(path, tensors, generator=GEN, library_versions=VERS,
                naming="HDF5 dataset path without the leading '/'",
                metadata={"groups": groups, "libver": list(libver),
                          "superblock_version": sb[0], "note": note})


def det_file(path, libver=None, track_order=False):
    """An h5py File created through the low-level API so that no object records a
    modification time (h5py leaves times off for datasets only): byte-identical reruns."""
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    if track_order:
        flags = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        fcpl.set_link_creation_order(flags)
        fcpl.set_attr_creation_order(flags)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    if libver == "latest":
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    elif libver == "v108":
        fapl.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18)
    fid = h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def det_group(parent, name, track_order=False):
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if track_order:
        flags = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        gcpl.set_link_creation_order(flags)
        gcpl.set_attr_creation_order(flags)
    h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl)
    return parent[name]


def write_h5py_files():
    rng = np.random.default_rng(24)

    # Chunked datasets with every filter combination h5py offers without plugins.
    p = fresh("h5_chunked_filters.h5")
    with h5py.File(p, "w") as f:
        f.create_dataset("plain_contiguous", data=rng.standard_normal((16, 8)).astype("f4"))
        f.create_dataset("chunked_only", data=rng.standard_normal((20, 12)).astype("f4"),
                         chunks=(8, 5))  # partial edge chunks in both dimensions
        f.create_dataset("gzip", data=rng.standard_normal((32, 16)).astype("f4"),
                         chunks=(8, 16), compression="gzip", compression_opts=6)
        f.create_dataset("gzip_shuffle", data=rng.integers(-500, 500, (40, 10)).astype("i4"),
                         chunks=(16, 10), compression="gzip", shuffle=True)
        f.create_dataset("gzip_shuffle_fletcher32",
                         data=rng.standard_normal((24, 24)).astype("f8"),
                         chunks=(10, 10), compression="gzip", compression_opts=9, shuffle=True,
                         fletcher32=True)
        f.create_dataset("fletcher32_only", data=rng.standard_normal((64,)).astype("f2"),
                         chunks=(16,), fletcher32=True)
        f.create_dataset("shuffle_only_u16", data=rng.integers(0, 60000, (30,)).astype("u2"),
                         chunks=(7,), shuffle=True)
        f.create_dataset("big_endian", data=rng.standard_normal((6, 3)).astype(">f4"))
        f.create_dataset("chunked_3d_i8", data=rng.integers(-128, 127, (5, 6, 7)).astype("i1"),
                         chunks=(2, 3, 4), compression="gzip")
        f.create_dataset("scalar", data=np.float64(2.5))
        f.create_dataset("empty", shape=(0, 3), dtype="f4")
        f.create_dataset("bool", data=rng.integers(0, 2, (9,)).astype(bool))
        # compact layout (data in the object header), through the low-level API
        data = rng.standard_normal((4, 4)).astype("f4")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dcpl.set_obj_track_times(False)
        space = h5py.h5s.create_simple(data.shape)
        dsid = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
        # a never-written chunked dataset (no chunks allocated: reads as fill value)
        f.create_dataset("unwritten_chunked", shape=(4, 4), dtype="f4", chunks=(2, 2),
                         fillvalue=7.0)
    h5_file_truth(p, "chunked (v1 B-tree index), deflate/shuffle/fletcher32, compact, "
                     "contiguous, scalar, empty, big-endian, bool (h5py enum of int8), and an "
                     "unallocated chunked dataset whose reads give its fill value")

    # Groups with track_order: compact link storage (few links) and dense storage (fractal
    # heap + v2 B-trees, past 8 links), plus a default (symbol table) group beside.
    p = fresh("h5_track_order.h5")
    with det_file(p, track_order=True) as f:  # h5py.File(p, "w", track_order=True), no times
        g = det_group(f, "ordered_small", track_order=True)
        for name in ("zeta", "alpha", "mid"):
            g.create_dataset(name, data=rng.standard_normal((3,)).astype("f4"))
        g = det_group(f, "ordered_dense", track_order=True)
        for i in range(24):
            g.create_dataset(f"w{23 - i:02d}", data=np.full((2,), i, "i4"))
        for i in range(20):  # attributes past the compact limit: dense attribute storage
            g.attrs[f"a{19 - i:02d}"] = i
        g = det_group(f, "symbol_table")
        for name in ("b", "a"):
            g.create_dataset(name, data=rng.standard_normal((2, 2)).astype("f4"))
    h5_file_truth(p, "track_order=True groups: 'members_in_library_order' is creation order "
                     "for them, name order for the symbol-table group")

    # Attribute strings: fixed-length (ASCII and UTF-8), variable-length (global heap),
    # arrays of both, and a group with enough attributes to need continuation blocks.
    p = fresh("h5_string_attrs.h5")
    with h5py.File(p, "w") as f:
        d = f.create_dataset("weights", data=rng.standard_normal((3, 2)).astype("f4"))
        d.attrs["vlen_str"] = "variable length utf-8 é"  # h5py default: vlen utf-8
        d.attrs.create("fixed_ascii", np.bytes_(b"fixed"), dtype=h5py.string_dtype("ascii", 5))
        d.attrs.create("fixed_utf8", "αβγ".encode(), dtype=h5py.string_dtype("utf-8", 6))
        d.attrs["fixed_bytes_array"] = np.array([b"dense_a", b"dense_bb", b"c"])  # S8 array
        d.attrs.create("vlen_array", ["one", "two", "three"], dtype=h5py.string_dtype())
        d.attrs.create("vlen_ascii", b"ascii bytes", dtype=h5py.string_dtype("ascii"))
        d.attrs["int_attr"] = np.int64(42)
        d.attrs["float_array"] = np.array([1.5, 2.5], "f4")
        g = f.create_group("many_attrs")
        for i in range(60):
            g.attrs[f"attr_{i:02d}"] = "x" * (i * 7)
    h5_file_truth(p, "string attributes: fixed (NULLPAD/NULLTERM) and variable-length (global "
                     "heap), ascii and utf-8; 'many_attrs' needs object header continuation")

    # Latest file format: superblock v3, object header v2; chunked datasets use the newer
    # chunk indexes (fixed array, extensible array) which issue 24 says to refuse by name.
    p = fresh("h5_libver_latest.h5")
    with det_file(p, libver="latest") as f:  # h5py.File(p, "w", libver="latest"), no times
        f.create_dataset("contiguous", data=rng.standard_normal((5, 4)).astype("f4"))
        f.create_dataset("chunked_fixed_array_index",
                         data=rng.standard_normal((16, 4)).astype("f4"), chunks=(4, 4),
                         compression="gzip")
        f.create_dataset("chunked_extensible_array_index",
                         data=rng.standard_normal((16,)).astype("f4"), chunks=(4,),
                         maxshape=(None,))
        f.create_dataset("single_chunk_index", data=rng.standard_normal((4, 4)).astype("f4"),
                         chunks=(4, 4))
        f.attrs["note"] = "libver latest"
    h5_file_truth(p, "libver='latest': superblock v3, v2 object headers, link messages; "
                     "chunk indexes other than the v1 B-tree (single chunk, fixed array, "
                     "extensible array)")

    # HDF5 1.8 format: superblock v2, v2 object headers, link messages; chunked datasets
    # still use the v1 B-tree chunk index.
    p = fresh("h5_libver_v108.h5")
    with det_file(p, libver="v108") as f:
        g = det_group(f, "layers")
        g.create_dataset("kernel", data=rng.standard_normal((6, 4)).astype("f4"))
        g.create_dataset("bias_gzip", data=rng.standard_normal((40,)).astype("f4"),
                         chunks=(16,), compression="gzip", shuffle=True)
        g.attrs["names"] = np.array([b"kernel", b"bias_gzip"])
    h5_file_truth(p, "libver=('v108','v108'): superblock v2, v2 object headers, link "
                     "messages in groups, a chunked dataset with the v1 B-tree index")


def write_tf_keras2():
    """Real Keras 2 legacy HDF5 (tf_keras 2.x, the Keras that TF 2.0-2.15 shipped): weight
    datasets named `<layer>/<weight>:0` under model_weights/<layer>/, an optimizer state group,
    and training_config. Truth keys are the Keras 2 variable names (`dense_a/kernel:0`)."""
    try:
        import tf_keras
    except ImportError:
        print("tf_keras not installed: no Keras 2 .h5")
        return
    vers = {**VERS, **versions("tf-keras")}
    tf_keras.utils.set_random_seed(9)
    x = tf_keras.Input((6,), name="x")
    h = tf_keras.layers.Dense(5, activation="relu", name="dense_a")(x)
    h = tf_keras.layers.BatchNormalization(name="bn")(h)
    h = tf_keras.layers.Conv1D(2, 2, name="conv")(tf_keras.layers.Reshape((5, 1), name="rs")(h))
    y = tf_keras.layers.Dense(3, name="dense_b")(tf_keras.layers.Flatten(name="flat")(h))
    m = tf_keras.Model(x, y, name="keras2_model")
    rng = np.random.default_rng(29)
    m.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in m.get_weights()])
    m.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss="mse")
    m.fit(rng.standard_normal((8, 6)).astype("f4"), rng.standard_normal((8, 3)).astype("f4"),
          epochs=1, batch_size=8, verbose=0)
    p = fresh("keras2_legacy.h5")
    m.save(p, save_format="h5")
    vars_ = {v.name: np.asarray(v.numpy()) for v in m.weights}
    for v in m.optimizer.variables():
        vars_["optimizer:" + v.name] = np.asarray(v.numpy())
    with h5py.File(p, "r") as f:
        dsets = h5_datasets(f)
        tensors, unmatched, extra = pair(vars_, dsets)
        for x_ in extra:
            tensors["<h5>/" + x_] = truth(dsets[x_][0], h5_path=x_)
        root = {k: (json.loads(v) if k.endswith("config") else jsonable(v))
                for k, v in f.attrs.items()}
        mw = f["model_weights"]
        per_layer = {k: jsonable(dict(mw[k].attrs)) for k in mw.keys()}
        mw_attrs = jsonable(dict(mw.attrs))
        ow = jsonable(dict(f["optimizer_weights"].attrs)) if "optimizer_weights" in f else None
    loaded = tf_keras.models.load_model(p, compile=False)
    assert [w.name for w in loaded.weights] == [w.name for w in m.weights]
    write_truth(p, tensors, generator=GEN, library_versions=vers,
                naming="Keras 2 variable name (v.name, with ':0'); optimizer state prefixed "
                       "'optimizer:'; h5_path = HDF5 dataset path",
                unsupported=unmatched,
                metadata={"root_attrs": root, "model_weights_attrs": mw_attrs,
                          "layer_attrs": per_layer, "optimizer_weights_attrs": ow})


if __name__ == "__main__":
    write_tf_keras2()
    write_keras_models()
    write_split_layer_names()
    write_lambda()
    write_custom_object()
    write_config_attacks()
    write_bf16()
    write_h5py_files()
