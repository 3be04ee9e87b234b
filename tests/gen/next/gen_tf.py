"""TensorFlow files: TF2 object-based checkpoints (one data file, and sharded over several),
a TF1 name-based checkpoint with its .meta MetaGraph, SavedModels (two signatures; a function
calling tf.io.read_file / tf.io.write_file; a vocabulary asset), a frozen GraphDef .pb, and
TFLite models (float, dynamic-range, float16, full int8). Writes tests/fixtures/next/tf/.

    $VENVS/tf/bin/python gen_tf.py     (tensorflow-cpu, keras 3, ai-edge-litert)

Truth:
- Checkpoints (`NAME.index` + `NAME.data-NNNNN-of-NNNNN`): `tensors` keyed by the stored key as
  tf.train.load_checkpoint lists it (`model/layer_with_weights-0/kernel/.ATTRIBUTES/
  VARIABLE_VALUE`), each with `readable_name`: the key with `/.ATTRIBUTES/VARIABLE_VALUE` cut and
  `layer_with_weights-N` / `layer-N` replaced by the layer's name, computed from the Keras model
  (`model/dense_a/kernel`) and `keras_path` (variable.path), paired by content. The object-graph
  string tensor `_CHECKPOINTABLE_OBJECT_GRAPH` is in `unsupported` (DT_STRING); its
  TrackableObjectGraph is summarised in metadata (nodes with children and attributes).
  `data_files` lists the shards with their sizes; `metadata.index_entries` every entry of the
  .index table (header, slice entries keyed by TF's binary EncodeTensorNameSlice keys, in
  hex), decoded with TF's BundleEntryProto; each tensor has its own `bundle_entry`, and
  `file_offset` where its bytes sit in one piece (None: stored as `slices`, see
  ckpt_sharded).
- SavedModels (folder): `tensors` are the variables under variables/ (keys as above),
  `metadata.signatures` each signature's inputs / outputs (name, dtype, shape) as
  tf.saved_model.load reports them, `metadata.functions` the sorted op types of every function
  in the MetaGraph's function library plus the main graph (`<graph_def>`), `metadata.assets`.
- Frozen .pb: `tensors` are the Const nodes' values (node name), `metadata.ops` the op types.
- TFLite: from ai_edge_litert's Interpreter (falling back to tf.lite.Interpreter): `tensors`
  are the tensors with constant data (a buffer), keyed by the tensor name, with `index`,
  `quantization` (scales, zero_points, quantized_dimension) and, for quantized tensors,
  `dequantized_sha256` of (q - zero_point) * scale as float32 over the quantized axis;
  `metadata.ops` the operator list, `metadata.tensors_without_data` the other tensors.
"""

import hashlib
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402

from _truth import locate, out_dir, truth, versions, write_truth  # noqa: E402

GEN = "gen_tf.py"
VERS = versions("tensorflow-cpu", "keras", "numpy", "protobuf", "ai-edge-litert")
OUT = out_dir("tf")


def fresh(name):
    p = os.path.join(OUT, name)
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)
    return p


def rm_prefix(prefix):
    d, base = os.path.split(prefix)
    for f in os.listdir(d):
        if f == base + ".index" or f.startswith(base + ".data-") or f == base + ".meta" \
                or f.startswith(base + ".expected") or f == "checkpoint" and base == "tf1_saver":
            os.remove(os.path.join(d, f))


def model():
    keras.utils.set_random_seed(7)
    m = keras.Sequential([
        keras.Input((4,), name="x"),
        keras.layers.Dense(8, activation="relu", name="dense_a"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dense(3, name="dense_b"),
    ], name="tfmodel")
    rng = np.random.default_rng(17)
    m.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in m.get_weights()])
    return m


def readable(key, m):
    k = key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "")
    parts = k.split("/")
    with_w = [l for l in m.layers if l.weights]
    out = []
    for p in parts:
        if p.startswith("layer_with_weights-"):
            out.append(with_w[int(p.split("-")[1])].name)
        elif p.startswith("layer-"):
            out.append(m.layers[int(p.split("-")[1])].name)
        else:
            out.append(p)
    return "/".join(out)


def object_graph_summary(reader):
    from tensorflow.core.protobuf import trackable_object_graph_pb2
    og = trackable_object_graph_pb2.TrackableObjectGraph()
    og.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    nodes = []
    for i, n in enumerate(og.nodes):
        nodes.append({"id": i,
                      "children": [{"local_name": c.local_name, "node_id": c.node_id}
                                   for c in n.children],
                      "attributes": [{"name": a.name, "checkpoint_key": a.checkpoint_key,
                                      "full_name": a.full_name} for a in n.attributes]})
    return nodes


def read_bundle_index(path):
    """Entries of a TensorBundle .index file: a LevelDB-format table (footer, index block,
    data blocks with prefix-compressed keys and restart points, no compression as TF writes
    it) whose values are BundleHeaderProto (key "") and BundleEntryProto, decoded with
    TensorFlow's own protos. Returns [(key bytes, proto as dict)] in table order. The dicts
    are MessageToDict output: proto3 fields at their default (shard_id 0, offset 0) are
    absent, int64s are strings, crc32c is the value as stored (TF stores it masked)."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.core.protobuf import tensor_bundle_pb2 as tb
    data = open(path, "rb").read()

    def varint(b, i):
        r = s_ = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s_
            s_ += 7
            if c < 0x80:
                return r, i

    def block(off, size):
        assert data[off + size] == 0, "compressed block"  # type byte: 0 = none
        b = data[off:off + size]
        nrest = int.from_bytes(b[-4:], "little")
        limit = len(b) - 4 - 4 * nrest
        i, key, out = 0, b"", []
        while i < limit:
            shared, i = varint(b, i)
            unshared, i = varint(b, i)
            vlen, i = varint(b, i)
            key = key[:shared] + b[i:i + unshared]
            i += unshared
            out.append((key, b[i:i + vlen]))
            i += vlen
        return out

    footer = data[-48:]
    assert footer[-8:] == bytes.fromhex("57fb808b247547db"), "not a table"
    _, j = varint(footer, 0)
    _, j = varint(footer, j)
    io_, j = varint(footer, j)
    is_, j = varint(footer, j)
    entries = []
    for _, handle in block(io_, is_):
        off, k = varint(handle, 0)
        size, _ = varint(handle, k)
        for key, val in block(off, size):
            msg = tb.BundleHeaderProto() if key == b"" else tb.BundleEntryProto()
            msg.ParseFromString(val)
            entries.append((key, MessageToDict(msg, preserving_proto_field_name=True)))
    return entries


def index_truth(prefix, tensors):
    """Adds `bundle_entry` (BundleEntryProto of the key) to each tensor truth, and returns the
    whole index (header, and entries whose keys are not plain names: slice entries, keyed by
    TF's EncodeTensorNameSlice bytes, shown in hex) for metadata."""
    entries = read_bundle_index(prefix + ".index")
    out = []
    for key, e in entries:
        try:
            k = key.decode("utf-8")
            printable = k.isprintable()
        except UnicodeDecodeError:
            k, printable = None, False
        if k in tensors:
            tensors[k]["bundle_entry"] = e
        out.append({"key": k if printable else None, "key_hex": key.hex(), "entry": e})
    return out


def checkpoint_truth(prefix, m=None, extra_vars=None, note=""):
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    kvars = {}
    if m is not None:
        for v in m.weights:
            # Keras 3: variable.path; tf_keras (Keras 2): the variable name without ':0'
            kvars[truth(v.numpy())["sha256"]] = (getattr(v, "path", None)
                                                 or v.name.rsplit(":", 1)[0])
    for name, v in (extra_vars or {}).items():
        kvars[truth(np.asarray(v))["sha256"]] = name
    tensors, unsupported = {}, []
    for key in sorted(dtypes):
        if dtypes[key] == tf.string:
            unsupported.append(key)
            continue
        a = reader.get_tensor(key)
        a = np.asarray(a)
        t = truth(a, tf_dtype=dtypes[key].name, tf_shape=list(shapes[key]))
        t["readable_name"] = key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "")
        if m is not None and ("layer_with_weights-" in key or "/layer-" in key):
            t["readable_name"] = readable(key, m)  # Keras 2 (tf_keras) object names
        if t["sha256"] in kvars:
            t["keras_path"] = kvars[t["sha256"]]
            if m is not None and "/_operations/" in key:
                # Keras 3 object graph (model/_functional/_operations/N/_kernel): named by the
                # checkpoint's root attribute plus the Keras path without the model's name
                root = key.split("/")[0]
                t["readable_name"] = root + "/" + t["keras_path"].split("/", 1)[1]
        tensors[key] = t
    d, base = os.path.split(prefix)
    data_files = sorted(f for f in os.listdir(d) if f.startswith(base + ".data-"))
    locate(tensors, [os.path.join(d, f) for f in data_files])
    md_index = index_truth(prefix, tensors)
    md = {"data_files": {f: os.path.getsize(os.path.join(d, f)) for f in data_files},
          "index_file": base + ".index", "note": note, "index_entries": md_index}
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in dtypes:
        md["object_graph"] = object_graph_summary(reader)
    return tensors, unsupported, md


def write_checkpoints():
    m = model()
    step = tf.Variable(42, dtype=tf.int64)
    table = tf.Variable(np.arange(12, dtype=np.float64).reshape(3, 4) / 7.0)
    half = tf.Variable(np.linspace(-1, 1, 6).astype(np.float16))

    prefix = os.path.join(OUT, "ckpt_single")
    rm_prefix(prefix)
    ck = tf.train.Checkpoint(model=m, step=step, extra={"table": table, "half": half})
    ck.write(prefix)
    tensors, unsup, md = checkpoint_truth(prefix, m, {"table": table.numpy(),
                                                     "half": half.numpy()})
    write_truth(prefix, tensors, generator=GEN, library_versions=VERS,
                naming="checkpoint key; readable_name and keras_path beside", unsupported=unsup,
                metadata=md, extra={"open_as": "prefix ckpt_single (files ckpt_single.index, "
                                              "ckpt_single.data-00000-of-00001)"})

    # Sharded over several data files: the sharding policy of TF >= 2.16.
    prefix = os.path.join(OUT, "ckpt_sharded")
    rm_prefix(prefix)
    try:
        policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=200)
        opts = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
        ck.write(prefix, options=opts)
        tensors, unsup, md = checkpoint_truth(
            prefix, m, {"table": table.numpy(), "half": half.numpy()},
            note="written with tf.train.experimental.MaxShardSizePolicy(max_shard_size=200)")
        # which shard each key is in, from the index (BundleEntryProto.shard_id)
        write_truth(prefix, tensors, generator=GEN, library_versions=VERS,
                    naming="checkpoint key; readable_name and keras_path beside",
                    unsupported=unsup, metadata=md)
    except Exception as e:  # noqa: BLE001
        print("sharded checkpoint not written:", e)

    # The same through Keras 2 (tf_keras): the object graph names layers layer_with_weights-N.
    try:
        import tf_keras
        tf_keras.utils.set_random_seed(7)
        m2 = tf_keras.Sequential([
            tf_keras.Input((4,), name="x"),
            tf_keras.layers.Dense(8, activation="relu", name="dense_a"),
            tf_keras.layers.BatchNormalization(name="bn"),
            tf_keras.layers.Dense(3, name="dense_b"),
        ], name="tfmodel")
        rng = np.random.default_rng(27)
        m2.set_weights([rng.standard_normal(w.shape).astype(w.dtype)
                        for w in m2.get_weights()])
        prefix = os.path.join(OUT, "ckpt_tf_keras2")
        rm_prefix(prefix)
        tf.train.Checkpoint(model=m2, step=tf.Variable(3, dtype=tf.int64)).write(prefix)
        tensors, unsup, md = checkpoint_truth(prefix, m2,
                                              note="model built with tf_keras (Keras 2)")
        write_truth(prefix, tensors, generator=GEN,
                    library_versions={**VERS, **versions("tf-keras")},
                    naming="checkpoint key; readable_name (layer_with_weights-N -> layer "
                           "name) and keras_path (the tf_keras variable name) beside",
                    unsupported=unsup, metadata=md)
    except ImportError:
        print("tf_keras not installed: no Keras 2 checkpoint")

    # TF1 name-based checkpoint with a MetaGraph (.meta) from tf.compat.v1.train.Saver.
    prefix = os.path.join(OUT, "tf1_saver")
    rm_prefix(prefix)
    g = tf.Graph()
    with g.as_default():
        rng = np.random.default_rng(18)
        w = tf.compat.v1.get_variable("layer1/weights",
                                      initializer=rng.standard_normal((3, 5)).astype("f4"))
        b = tf.compat.v1.get_variable("layer1/biases", initializer=np.zeros(5, "f4") + 0.5)
        tf.compat.v1.get_variable("global_step", initializer=np.int64(100))
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="input")
        tf.identity(tf.matmul(x, w) + b, name="output")
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, prefix, write_meta_graph=True)
    os.remove(os.path.join(OUT, "checkpoint")) if os.path.exists(
        os.path.join(OUT, "checkpoint")) else None
    tensors, unsup, md = checkpoint_truth(prefix, None)
    mg = tf.compat.v1.MetaGraphDef()
    mg.ParseFromString(open(prefix + ".meta", "rb").read())
    md["meta_graph_ops"] = sorted({n.op for n in mg.graph_def.node})
    md["meta_file"] = "tf1_saver.meta"
    write_truth(prefix, tensors, generator=GEN, library_versions=VERS,
                naming="variable name as stored (name-based TF1 checkpoint)",
                unsupported=unsup, metadata=md)


# ------------------------------------------------------------------ SavedModels


def tensor_info(ti):
    from tensorflow.core.framework import types_pb2
    return {"name": ti.name, "dtype": types_pb2.DataType.Name(ti.dtype),
            "shape": None if ti.tensor_shape.unknown_rank
            else [d.size for d in ti.tensor_shape.dim]}


def saved_model_truth(path, naming_extra=""):
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    funcs = {}
    for mg in sm.meta_graphs:
        funcs["<graph_def>"] = sorted({n.op for n in mg.graph_def.node})
        for f in mg.graph_def.library.function:
            funcs[f.signature.name] = sorted({n.op for n in f.node_def})
        sigs_pb = {k: {"method_name": v.method_name,
                       "inputs": {ik: tensor_info(iv) for ik, iv in v.inputs.items()},
                       "outputs": {ok: tensor_info(ov) for ok, ov in v.outputs.items()}}
                   for k, v in mg.signature_def.items()}
        tags = list(mg.meta_info_def.tags)
        assets = [{"filename": a.filename, "tensor": a.tensor_info.name}
                  for a in mg.asset_file_def]
    loaded = tf.saved_model.load(path)
    sigs_loaded = {}
    for k, fn in loaded.signatures.items():
        _, kw = fn.structured_input_signature
        sigs_loaded[k] = {"inputs": {n: {"dtype": s.dtype.name, "shape": s.shape.as_list()
                                         if s.shape.rank is not None else None}
                                     for n, s in kw.items()},
                          "outputs": {n: {"dtype": s.dtype.name, "shape": s.shape.as_list()
                                          if s.shape.rank is not None else None}
                                      for n, s in fn.structured_outputs.items()}}
    tensors, unsup, md = {}, [], {}
    vprefix = os.path.join(path, "variables", "variables")
    if os.path.exists(vprefix + ".index"):
        tensors, unsup, md = checkpoint_truth(vprefix, None)
        md.pop("note", None)
    files = sorted(os.path.relpath(os.path.join(r, f), path)
                   for r, _, fs in os.walk(path) for f in fs)
    md.update({"signatures": sigs_loaded, "signature_defs": sigs_pb, "functions": funcs,
               "tags": tags, "assets": assets, "files": files})
    return tensors, unsup, md


class TwoSig(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(19)
        self.w = tf.Variable(rng.standard_normal((4, 3)).astype("f4"), name="w")
        self.b = tf.Variable(rng.standard_normal((3,)).astype("f4"), name="b")
        self.emb = tf.Variable(rng.standard_normal((10, 2)).astype("f4"), name="emb")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def predict(self, features):
        return {"logits": tf.matmul(features, self.w) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids"),
                                  tf.TensorSpec([None, 4], tf.float32, name="features")])
    def classify(self, ids, features):
        logits = tf.matmul(features, self.w) + self.b
        return {"classes": tf.argmax(logits, axis=1, output_type=tf.int64),
                "embedded": tf.nn.embedding_lookup(self.emb, ids)}


class FileOps(tf.Module):
    """Malicious control: the serving function reads a file named by its input and writes its
    contents elsewhere (never executed here; saving only traces it)."""

    def __init__(self):
        super().__init__()
        self.v = tf.Variable(np.ones(2, "f4"), name="v")

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
    def serve(self, path):
        data = tf.io.read_file(path)
        tf.io.write_file(tf.strings.join([path, ".copy"]), data)
        return {"length": tf.strings.length(data), "v": self.v * 1.0}


class Vocab(tf.Module):
    """Benign control: a lookup table initialised from a vocabulary asset (assets/vocab.txt)."""

    def __init__(self, vocab_path):
        super().__init__()
        init = tf.lookup.TextFileInitializer(
            vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(init, default_value=-1)
        self.scale = tf.Variable(np.float32(0.5), name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="tokens")])
    def serve(self, tokens):
        ids = self.table.lookup(tokens)
        return {"ids": ids, "scaled": tf.cast(ids, tf.float32) * self.scale}


def write_saved_models():
    p = fresh("savedmodel_two_signatures")
    m = TwoSig()
    tf.saved_model.save(m, p, signatures={"serving_default": m.predict, "classify": m.classify})
    tensors, unsup, md = saved_model_truth(p)
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="variables/ checkpoint key", unsupported=unsup, metadata=md)

    p = fresh("savedmodel_file_ops")
    m = FileOps()
    tf.saved_model.save(m, p, signatures={"serving_default": m.serve})
    tensors, unsup, md = saved_model_truth(p)
    md["expected_verdict"] = "dangerous: ReadFile and WriteFile in the serving function"
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="variables/ checkpoint key", unsupported=unsup, metadata=md)

    p = fresh("savedmodel_vocab_asset")
    # The table's shared_name embeds the vocabulary path as given: build it from a relative
    # path inside a scratch folder so no path of this machine lands in saved_model.pb.
    import tempfile
    here = os.getcwd()
    p_abs = os.path.abspath(p)
    with tempfile.TemporaryDirectory() as tmpdir:
        os.chdir(tmpdir)
        try:
            with open("vocab.txt", "w") as f:
                f.write("\n".join(["[PAD]", "[UNK]", "the", "model", "weights", "scope"]) + "\n")
            m = Vocab("vocab.txt")
            tf.saved_model.save(m, p_abs, signatures={"serving_default": m.serve})
        finally:
            os.chdir(here)
    tensors, unsup, md = saved_model_truth(p)
    md["expected_verdict"] = ("benign: the table initialiser reads only its own asset "
                              "(InitializeTableFromTextFileV2 on assets/vocab.txt)")
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="variables/ checkpoint key", unsupported=unsup, metadata=md)


# ------------------------------------------------------------------ frozen GraphDef


def write_frozen():
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    m = TwoSig()
    cf = m.predict.get_concrete_function()
    frozen = convert_variables_to_constants_v2(cf)
    gd = frozen.graph.as_graph_def()
    p = fresh("frozen_graph.pb")
    with open(p, "wb") as f:
        f.write(gd.SerializeToString(deterministic=True))  # sorted map keys
    back = tf.compat.v1.GraphDef()
    back.ParseFromString(open(p, "rb").read())
    tensors = {}
    for n in back.node:
        if n.op == "Const":
            a = tf.make_ndarray(n.attr["value"].tensor)
            if a.dtype.kind in "biufc":
                tensors[n.name] = truth(a, tf_dtype=tf.dtypes.as_dtype(
                    n.attr["value"].tensor.dtype).name)
    write_truth(p, tensors, generator=GEN, library_versions=VERS,
                naming="Const node name", metadata={
                    "ops": sorted({n.op for n in back.node}),
                    "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.input)}
                              for n in back.node]})

    # A GraphDef whose ops touch the file system (issue 26: .pb judged by its operations),
    # with PrintV2 to a file:// stream.
    g = tf.Graph()
    with g.as_default():
        path = tf.compat.v1.placeholder(tf.string, [], name="path")
        data = tf.io.read_file(path, name="read")
        tf.io.write_file(tf.constant("/tmp/ckptscope-fixture-out"), data, name="write")
        tf.print(data, output_stream="file:///tmp/ckptscope-fixture-print", name="print")
        tf.constant(np.arange(6, dtype="f4").reshape(2, 3), name="weights")
    p = fresh("graph_file_ops.pb")
    gd = g.as_graph_def()
    with open(p, "wb") as f:
        f.write(gd.SerializeToString(deterministic=True))  # sorted map keys
    tensors = {}
    for n in gd.node:
        if n.op == "Const" and n.attr["value"].tensor.dtype != tf.string.as_datatype_enum:
            tensors[n.name] = truth(tf.make_ndarray(n.attr["value"].tensor))
    prints = [{"node": n.name, "output_stream": n.attr["output_stream"].s.decode()}
              for n in gd.node if n.op == "PrintV2"]
    write_truth(p, tensors, generator=GEN, library_versions=VERS, naming="Const node name",
                metadata={"ops": sorted({n.op for n in gd.node}), "print_v2": prints,
                          "expected_verdict": "dangerous: ReadFile, WriteFile, PrintV2 to "
                                              "file://"})


# ------------------------------------------------------------------ TFLite


def interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        src = "ai_edge_litert"
    except ImportError:  # pragma: no cover
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
        src = "tf.lite"
    # no default delegate (XNNPACK would replace the model's operators by DELEGATE nodes)
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=
                     OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it, src


def tflite_truth(path, with_data_indices):
    it, src = interpreter(path)
    tensors, without = {}, []
    for d in it.get_tensor_details():
        q = d.get("quantization_parameters", {})
        qd = {"scales": [float(s) for s in q.get("scales", [])],
              "zero_points": [int(z) for z in q.get("zero_points", [])],
              "quantized_dimension": int(q.get("quantized_dimension", 0))}
        entry = {"index": int(d["index"]), "tflite_dtype": np.dtype(d["dtype"]).name,
                 "shape_signature": [int(x) for x in d.get("shape_signature", d["shape"])],
                 "quantization": qd}
        if d["index"] in with_data_indices:
            a = np.asarray(it.get_tensor(d["index"]))
            if qd["scales"]:
                sc = np.asarray(qd["scales"], np.float32)
                zp = np.asarray(qd["zero_points"], np.float32)
                if sc.size > 1:
                    shp = [1] * a.ndim
                    shp[qd["quantized_dimension"]] = -1
                    sc, zp = sc.reshape(shp), zp.reshape(shp)
                deq = ((a.astype(np.float32) - zp) * sc).astype(np.float32)
                entry["dequantized_sha256"] = hashlib.sha256(deq.tobytes()).hexdigest()
                entry["dequantized_values"] = [float(v) for v in deq.reshape(-1)[:4]]
            key = d["name"] if d["name"] not in tensors else f"{d['name']}#{d['index']}"
            tensors[key] = truth(a, **entry)
        else:
            without.append({"name": d["name"], **entry, "shape": [int(x) for x in d["shape"]]})
    ops = []
    try:
        for o in it._get_ops_details():
            ops.append({"index": int(o["index"]), "op_name": o["op_name"],
                        "inputs": [int(i) for i in o["inputs"]],
                        "outputs": [int(i) for i in o["outputs"]]})
    except Exception as e:  # noqa: BLE001
        ops = [f"unavailable: {e}"]
    sig = it.get_signature_list()
    return tensors, {"ops": ops, "tensors_without_data": without, "signatures": sig,
                     "interpreter": src}


def constant_tensor_indices(path):
    """Indices of tensors backed by a non-empty buffer, from the flatbuffer itself through
    TensorFlow's bundled schema reader (tensorflow.lite.tools.flatbuffer_utils)."""
    try:
        from tensorflow.lite.tools import flatbuffer_utils as fu
        mdl = fu.read_model(path)
        out = set()
        for sg in mdl.subgraphs:
            for i, t in enumerate(sg.tensors):
                b = mdl.buffers[t.buffer]
                if (b.data is not None and len(b.data) > 0) or (b.size or 0) > 0:
                    out.add(i)
        custom = [c.customCode.decode() if isinstance(c.customCode, bytes) else c.customCode
                  for c in mdl.operatorCodes if c.customCode]
        meta = [m.name.decode() if isinstance(m.name, bytes) else m.name
                for m in (mdl.metadata or [])]
        return out, {"custom_op_codes": custom, "metadata_entries": meta,
                     "schema_version": mdl.version, "buffers": len(mdl.buffers)}
    except Exception as e:  # noqa: BLE001
        return None, {"flatbuffer_utils_error": str(e)}


def write_tflite():
    keras.utils.set_random_seed(8)
    m = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(16, name="dense"),  # 16 x 144 weights: over the 1024-element
    ], name="tiny_cnn")                       # threshold of dynamic-range quantization
    rng = np.random.default_rng(20)
    m.set_weights([(rng.standard_normal(w.shape) * 0.3).astype(w.dtype)
                   for w in m.get_weights()])

    def rep():
        r = np.random.default_rng(21)
        for _ in range(8):
            yield [r.standard_normal((1, 8, 8, 1)).astype("f4")]

    variants = {
        "float32.tflite": {},
        "dynamic_range_int8.tflite": {"optimizations": [tf.lite.Optimize.DEFAULT]},
        "float16.tflite": {"optimizations": [tf.lite.Optimize.DEFAULT],
                           "supported_types": [tf.float16]},
        "full_int8.tflite": {"optimizations": [tf.lite.Optimize.DEFAULT],
                             "representative_dataset": rep, "int8_io": True},
    }
    for name, v in variants.items():
        conv = tf.lite.TFLiteConverter.from_keras_model(m)
        if "optimizations" in v:
            conv.optimizations = v["optimizations"]
        if "supported_types" in v:
            conv.target_spec.supported_types = v["supported_types"]
        if "representative_dataset" in v:
            conv.representative_dataset = v["representative_dataset"]
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        data = conv.convert()
        p = fresh(name)
        with open(p, "wb") as f:
            f.write(data)
        idx, fb = constant_tensor_indices(p)
        if idx is None:
            idx = set()
        tensors, md = tflite_truth(p, idx)
        md.update(fb)
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="TFLite tensor name (tensors with a data buffer)",
                    metadata=md, extra={"converter": {k: str(x) for k, x in v.items()
                                                      if k != "representative_dataset"}})


def write_tflite_custom_ops():
    """TFLite models whose operators the interpreter cannot run without extra registrations:
    a custom operator (allow_custom_ops: BesselI0e), and Flex (SELECT_TF_OPS) operators that
    run TensorFlow kernels, here FlexReadFile (reads a file named by the input: dangerous).
    The interpreter refuses to allocate them, so the truth comes from the flatbuffer through
    TensorFlow's schema reader (tensorflow.lite.tools.flatbuffer_utils): tensors with a data
    buffer, their bytes viewed as the TensorType's dtype."""
    from tensorflow.lite.tools import flatbuffer_utils as fu
    from tensorflow.lite.python import schema_py_generated as schema
    tt = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    npdt = {"FLOAT32": "<f4", "FLOAT16": "<f2", "FLOAT64": "<f8", "INT32": "<i4",
            "INT64": "<i8", "INT16": "<i2", "INT8": "i1", "UINT8": "u1", "BOOL": "?"}
    bo = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    w = tf.constant((np.arange(6, dtype="f4").reshape(2, 3) - 2.5) / 3.0)
    cases = {
        "custom_op.tflite": (lambda x: tf.math.bessel_i0e(tf.matmul(x, w)),
                             [tf.TensorSpec([1, 2], tf.float32, name="x")], False,
                             "suspicious: custom operator BesselI0e needs native code "
                             "registered by the runtime"),
        "flex_readfile.tflite": (lambda p: tf.strings.length(tf.io.read_file(p)) + 1,
                                 [tf.TensorSpec([], tf.string, name="path")], True,
                                 "dangerous: FlexReadFile runs TensorFlow's ReadFile kernel "
                                 "on a path given at run time"),
    }
    for name, (fn, spec, flex, verdict) in cases.items():
        cf = tf.function(fn, input_signature=spec).get_concrete_function()
        conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
        if flex:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                              tf.lite.OpsSet.SELECT_TF_OPS]
        else:
            conv.allow_custom_ops = True
        p = fresh(name)
        with open(p, "wb") as f:
            f.write(conv.convert())
        mdl = fu.read_model(p)
        tensors, without = {}, []
        for sg in mdl.subgraphs:
            for i, t in enumerate(sg.tensors):
                tname = t.name.decode() if isinstance(t.name, bytes) else t.name
                typ = tt[t.type]
                b = mdl.buffers[t.buffer]
                shape = [int(x) for x in (t.shape if t.shape is not None else [])]
                if b.data is not None and len(b.data) and typ in npdt:
                    a = np.frombuffer(bytes(bytearray(b.data)), npdt[typ]).reshape(shape)
                    tensors[tname] = truth(a, index=i, tflite_type=typ, buffer=int(t.buffer))
                else:
                    without.append({"name": tname, "index": i, "tflite_type": typ,
                                    "shape": shape})
        codes = [{"builtin": bo.get(max(c.builtinCode, c.deprecatedBuiltinCode)),
                  "custom_code": (c.customCode.decode() if isinstance(c.customCode, bytes)
                                  else c.customCode)} for c in mdl.operatorCodes]
        ops = [{"opcode_index": int(o.opcodeIndex), **codes[o.opcodeIndex]}
               for sg in mdl.subgraphs for o in sg.operators]
        try:
            it, _ = interpreter(p)
            loads = True
        except Exception as e:  # noqa: BLE001 - the runtime's refusal is part of the truth
            loads = f"{type(e).__name__}: {str(e)[:200]}"
        write_truth(p, tensors, generator=GEN, library_versions=VERS,
                    naming="TFLite tensor name (tensors with a data buffer)",
                    metadata={"operator_codes": codes, "ops": ops,
                              "tensors_without_data": without,
                              "interpreter_allocates": loads, "expected_verdict": verdict})


if __name__ == "__main__":
    write_tflite_custom_ops()
    write_checkpoints()
    write_saved_models()
    write_frozen()
    write_tflite()
