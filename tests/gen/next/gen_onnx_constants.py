"""ONNX models whose weights are in Constant nodes, training_info initializers, and external data
with a `checksum` entry. Writes tests/fixtures/next/onnx_constants/.

    $VENVS/misc/bin/python gen_onnx_constants.py

Naming of Constant tensors: a Constant node's tensor is named by its output (`node.output[0]`).
In a sub-graph it is prefixed by its scope in ckptscope's existing sub-graph initializer rule:
`NODE.ATTRIBUTE.` per level (NODE = the node's name, or `OP_TYPE_INDEX` when it has none), so
the `value` tensor of the Constant producing `c_then` in the then_branch of If node `gate` is
`gate.then_branch.c_then`. Each truth entry also has `output`, `scope` (list of
[node, attribute]), `attribute` (value / value_float / value_floats / value_int / value_ints /
sparse_value) and `kind` ("constant", "initializer", "training_initializer").

Truth values come from onnx.numpy_helper (to_array on the TensorProto; value_float(s) as float32,
value_int(s) as int64, sparse_value densified), and for the main graph cross-checked against
onnx.reference.ReferenceEvaluator running the Constant nodes.
"""

import hashlib
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from _truth import out_dir, sample, truth, versions, write_truth

GEN = "gen_onnx_constants.py"
VERS = versions("onnx", "numpy", "ml_dtypes")
OUT = out_dir("onnx_constants")
rng = np.random.default_rng(25)


def const(name, out, **attr):
    return helper.make_node("Constant", [], [out], name=name, **attr)


def tensor(name, dtype, shape):
    return numpy_helper.from_array(sample(rng, dtype, shape), name)


def sparse(name, dense_shape, nnz):
    dense = np.zeros(int(np.prod(dense_shape)), np.float32)
    idx = np.sort(rng.choice(dense.size, nnz, replace=False)).astype(np.int64)
    vals = rng.standard_normal(nnz).astype(np.float32)
    dense[idx] = vals
    sp = helper.make_sparse_tensor(
        numpy_helper.from_array(vals, name), numpy_helper.from_array(idx, name + "_indices"),
        list(dense_shape))
    return sp


def densify(sp):
    vals = numpy_helper.to_array(sp.values)
    idx = numpy_helper.to_array(sp.indices)
    shape = list(sp.dims)
    out = np.zeros(int(np.prod(shape)), vals.dtype)
    if idx.ndim == 1:
        out[idx] = vals
    else:  # [nnz, rank] coordinates
        out[np.ravel_multi_index(idx.T, shape)] = vals
    return out.reshape(shape)


def constant_value(node, base_dir=None):
    """(attribute name, numpy array) of a Constant node, as the ONNX spec defines it."""
    (a,) = node.attribute
    v = helper.get_attribute_value(a)
    if a.name == "value":
        return a.name, numpy_helper.to_array(v, base_dir=base_dir or "")
    if a.name == "sparse_value":
        return a.name, densify(v)
    if a.name == "value_float":
        return a.name, np.array(v, np.float32)
    if a.name == "value_floats":
        return a.name, np.array(v, np.float32)
    if a.name == "value_int":
        return a.name, np.array(v, np.int64)
    if a.name == "value_ints":
        return a.name, np.array(v, np.int64)
    if a.name == "value_string":
        return a.name, None
    if a.name == "value_strings":
        return a.name, None
    raise ValueError(a.name)


def walk(graph, scope, found, base_dir=None):
    """Collects Constant tensors and initializers of `graph` and its sub-graphs."""
    prefix = "".join(f"{n}.{attr}." for n, attr in scope)
    for t in graph.initializer:
        found[prefix + t.name] = truth(
            numpy_helper.to_array(t, base_dir=base_dir or ""), output=t.name,
            scope=[list(s) for s in scope], kind="initializer")
    for i, node in enumerate(graph.node):
        nname = node.name or f"{node.op_type}_{i}"
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr, arr = constant_value(node, base_dir)
            if arr is not None:
                found[prefix + node.output[0]] = truth(
                    arr, output=node.output[0], node=nname, scope=[list(s) for s in scope],
                    attribute=attr, kind="constant")
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                walk(a.g, scope + [(nname, a.name)], found, base_dir)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for j, g in enumerate(a.graphs):
                    walk(g, scope + [(nname, f"{a.name}.{j}")], found, base_dir)


def meta(m):
    return {
        "onnx.ir_version": str(m.ir_version),
        "onnx.producer_name": m.producer_name,
        "onnx.opset_import": ", ".join(f"{o.domain or 'ai.onnx'}={o.version}"
                                       for o in m.opset_import),
        "onnx.graph_name": m.graph.name,
        "onnx.nodes": str(len(m.graph.node)),
        "onnx.training_info": str(len(m.training_info)),
    }


def check_main_with_reference(m, found):
    """Runs the main graph's Constant nodes with the reference evaluator and compares."""
    consts = [n for n in m.graph.node if n.op_type == "Constant"
              and n.attribute[0].name not in ("sparse_value", "value_string")]
    outs = [helper.make_tensor_value_info(n.output[0], TensorProto.UNDEFINED, None)
            for n in consts]
    g = helper.make_graph(consts, "consts", [], outs)
    mm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    got = ReferenceEvaluator(mm).run(None, {})
    for n, arr in zip(consts, got):
        t = truth(np.asarray(arr))
        want = found[n.output[0]]
        assert (t["sha256"], t["dtype"], t["shape"]) == (want["sha256"], want["dtype"],
                                                         want["shape"]), n.output[0]


def branch(gname, out, nodes_extra, last_input):
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    return helper.make_graph(nodes_extra + [helper.make_node("Identity", [last_input], [out])],
                             gname, [], [y])


def build_constants():
    """Constant nodes of every attribute kind in the main graph, in If branches, in an If
    nested inside an If branch, and in a Loop body (an unnamed Loop: scoped `Loop_N`)."""
    inner = helper.make_node(
        "If", ["cond"], ["inner_out"], name="inner_gate",
        then_branch=branch("inner_then", "it", [
            const("k_deep", "c_deep", value=tensor("c_deep_v", np.float16, (2, 3)))], "c_deep"),
        else_branch=branch("inner_else", "ie", [
            const("k_deep_f", "c_deep_f", value_floats=[0.5, -1.25, 2.0])], "c_deep_f"))
    then_g = branch("then", "t", [
        const("k_then", "c_then", value=tensor("c_then_v", np.float32, (4, 3))),
        const("k_then_i", "c_then_i", value_ints=[3, -1, 7, 2**40]),
        inner,
    ], "c_then")
    else_g = branch("else", "e", [
        const("k_else", "c_else", value=tensor("c_else_v", np.float32, (4, 3))),
        const("k_else_bf", "c_else_bf16", value=tensor("bf", np.dtype("float32"), (5,))),
    ], "c_else")
    # make c_else_bf16 a real BFLOAT16 tensor
    bf = helper.make_tensor("c_else_bf16_v", TensorProto.BFLOAT16, [5],
                            [1.0, -2.5, 3.25, 0.0, 100.0])
    else_g.node[1].attribute[0].t.CopyFrom(bf)

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         const("k_loop", "c_loop", value=tensor("c_loop_v", np.float32, (2,))),
         helper.make_node("Add", ["carried", "c_loop"], ["carried_out"])],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, [2])])

    nodes = [
        const("k_w", "w", value=tensor("w_value", np.float32, (3, 4))),
        const("k_b", "b", value=tensor("b_value", np.float32, (4,))),
        const("k_f", "scale", value_float=0.125),
        const("k_fs", "scales", value_floats=[1.0, 2.0, 3.5]),
        const("k_i", "axis", value_int=-1),
        const("k_is", "new_shape", value_ints=[1, 4]),
        const("k_i8", "q_i8", value=tensor("q_i8_v", np.int8, (8,))),
        const("k_i64", "ids", value=tensor("ids_v", np.int64, (3, 2))),
        const("k_f64", "f64", value=tensor("f64_v", np.float64, (2, 2))),
        const("k_bool", "mask", value=tensor("mask_v", np.bool_, (6,))),
        const("k_scalar", "scalar_t", value=numpy_helper.from_array(np.array(2.5, np.float32),
                                                                     "scalar_v")),
        const("k_empty", "empty", value=numpy_helper.from_array(np.zeros((0, 3), np.float32),
                                                                 "empty_v")),
        const("k_sparse", "sp", sparse_value=sparse("sp_v", (4, 5), 6)),
        const("k_str", "label", value_string="not a tensor of numbers"),
        # float_data (not raw_data) form of a value tensor
        const("k_fdata", "fdata", value=helper.make_tensor("fdata_v", TensorProto.FLOAT, [2, 2],
                                                           [1.0, 2.0, 3.0, 4.0], raw=False)),
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["y0"], name="add"),
        helper.make_node("Mul", ["y0", "scale"], ["y"], name="mul"),
        helper.make_node("If", ["cond"], ["y_if"], name="gate", then_branch=then_g,
                         else_branch=else_g),
        helper.make_node("Loop", ["trips", "cond", "carry0"], ["y_loop"], body=body),
    ]
    graph = helper.make_graph(
        nodes, "constants",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("carry0", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("y_if", TensorProto.FLOAT, [4, 3]),
         helper.make_tensor_value_info("y_loop", TensorProto.FLOAT, [2])])
    m = helper.make_model(graph, producer_name="ckptscope-fixtures",
                          opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def build_training():
    """An initializer in the main graph, and training_info with an initialization graph whose
    initializer and Constant node are listed too (kind training_initializer / constant), named
    `training_info.N.initialization.NAME` and `training_info.N.algorithm.NAME`."""
    w = tensor("w", np.float32, (3, 2))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "trainable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=[w])
    init_graph = helper.make_graph(
        [const("k_init", "w_init", value=tensor("w_init_v", np.float32, (3, 2)))],
        "initialization", [], [helper.make_tensor_value_info("w_init", TensorProto.FLOAT, [3, 2])],
        initializer=[tensor("seed", np.int64, (1,))])
    algo = helper.make_graph(
        [helper.make_node("Mul", ["w", "lr"], ["w_new"])], "algorithm", [],
        [helper.make_tensor_value_info("w_new", TensorProto.FLOAT, [3, 2])],
        initializer=[tensor("lr", np.float32, (1,))])
    ti = helper.make_training_info(algo, [("w", "w_new")], init_graph, [("w", "w_init")])
    m = helper.make_model(graph, producer_name="ckptscope-fixtures",
                          opset_imports=[helper.make_opsetid("", 17),
                                         helper.make_opsetid("ai.onnx.preview.training", 1)])
    m.training_info.append(ti)
    onnx.checker.check_model(m)
    return m


def training_truth(m):
    found = {}
    walk(m.graph, [], found)
    for i, ti in enumerate(m.training_info):
        for part in ("initialization", "algorithm"):
            sub = {}
            walk(getattr(ti, part), [], sub)
            for k, v in sub.items():
                if v["kind"] == "initializer":
                    v["kind"] = "training_initializer"
                v["scope"] = [["training_info", f"{i}.{part}"]] + v["scope"]
                found[f"training_info.{i}.{part}.{k}"] = v
    return found


def write_external():
    """Initializers and a Constant node's value in one external data file, each with a
    `checksum` entry (SHA-1 of the whole file named by `location`, as onnx.proto says). A second
    model points at the same file with a wrong checksum (onnx.load does not verify checksums:
    it loads; ckptscope is expected to report the mismatch)."""
    for f in ("external_checksum.onnx", "external_badsum.onnx", "external_checksum.data"):
        p = os.path.join(OUT, f)
        if os.path.exists(p):
            os.remove(p)
    inits = [tensor("ext_w", np.float32, (16, 16)), tensor("ext_b", np.float16, (16,)),
             tensor("ext_ids", np.int64, (40,))]
    nodes = [
        const("k_ext", "ext_const", value=tensor("ext_const_v", np.float32, (8, 8))),
        const("k_row", "ext_const_row", value=tensor("ext_row_v", np.float32, (16,))),
        helper.make_node("MatMul", ["x", "ext_w"], ["xw"]),
        helper.make_node("Add", ["xw", "ext_const_row"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], initializer=inits)
    m = helper.make_model(graph, producer_name="ckptscope-fixtures",
                          opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    path = os.path.join(OUT, "external_checksum.onnx")
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external_checksum.data", size_threshold=0,
                    convert_attribute=True)
    data = os.path.join(OUT, "external_checksum.data")
    sha1 = hashlib.sha1(open(data, "rb").read()).hexdigest()

    def add_checksum(model, value):
        from onnx.external_data_helper import _get_all_tensors, uses_external_data
        n = 0
        for t in _get_all_tensors(model):
            if uses_external_data(t):
                e = t.external_data.add()
                e.key, e.value = "checksum", value
                n += 1
        return n

    mm = onnx.load(path, load_external_data=False)
    n = add_checksum(mm, sha1)
    onnx.save_model(mm, path)
    bad = onnx.load(path, load_external_data=False)
    for t in list(bad.graph.initializer):
        for e in t.external_data:
            if e.key == "checksum":
                e.value = "0" * 40
    for node in bad.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                for e in a.t.external_data:
                    if e.key == "checksum":
                        e.value = "0" * 40
    bad_path = os.path.join(OUT, "external_badsum.onnx")
    onnx.save_model(bad, bad_path)

    for p, label in ((path, "good"), (bad_path, "bad")):
        loaded = onnx.load(p)  # loads the external data (no checksum verification in onnx)
        found = {}
        walk(loaded.graph, [], found)
        ext = {}
        raw = onnx.load(p, load_external_data=False)
        from onnx.external_data_helper import _get_all_tensors
        for t in _get_all_tensors(raw):
            ext[t.name] = {e.key: e.value for e in t.external_data}
        for k, v in found.items():
            tname = (k if v["kind"] == "initializer"
                     else next(n.attribute[0].t.name for n in raw.graph.node
                               if n.op_type == "Constant" and n.output[0] == k))
            v["external_data"] = ext.get(tname)
        write_truth(p, found, generator=GEN, library_versions=VERS,
                    locate_in=[p, data],
                    naming="initializer names; Constant tensors by their output",
                    metadata=meta(loaded),
                    extra={"external_file": "external_checksum.data",
                           "external_file_sha1": sha1,
                           "checksum_entries": n,
                           "checksum_valid": label == "good",
                           "onnx_load_verifies_checksum": False})


def main():
    m = build_constants()
    p = os.path.join(OUT, "constants.onnx")
    onnx.save(m, p)
    loaded = onnx.load(p)
    found = {}
    walk(loaded.graph, [], found)
    check_main_with_reference(loaded, found)
    write_truth(p, found, generator=GEN, library_versions=VERS,
                naming=__doc__.split("Naming of Constant tensors: ")[1].split("\n\n")[0],
                unsupported=["label"],  # value_string: a string constant, not numeric
                metadata=meta(loaded))

    m = build_training()
    p = os.path.join(OUT, "training_info.onnx")
    onnx.save(m, p)
    loaded = onnx.load(p)
    write_truth(p, training_truth(loaded), generator=GEN, library_versions=VERS,
                naming="main graph initializers by name; training_info graphs as "
                       "training_info.N.initialization.NAME / training_info.N.algorithm.NAME",
                metadata=meta(loaded))

    write_external()


if __name__ == "__main__":
    main()
