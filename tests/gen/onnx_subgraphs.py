"""Writes tests/fixtures/onnx/subgraphs.onnx, a model whose If, Loop and Scan nodes (and a
custom node with a GRAPHS attribute) hold initializers in their sub-graphs, with its truth
subgraphs.onnx.expected.json (the schema of tests/gen/onnx_numpy.py).

Run from the repository root with a Python that has numpy and onnx:

    /work/venv/bin/python tests/gen/onnx_subgraphs.py

The truth is read back by the onnx library: every graph is walked through the node attributes of
type GRAPH and GRAPHS, and each initializer named by ckptscope's rule, `NODE.ATTRIBUTE.NAME`
(`NODE.ATTRIBUTE.I.NAME` for the I-th graph of a GRAPHS attribute), nested scopes joined by dots,
NODE being the node's name or `OP_TYPE_INDEX` (its index in its graph) when it has none. The
Constant node's tensor is a value of the program, not an initializer, and is not listed.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from onnx_numpy import ROOT, onnx_metadata, sample, write_truth  # noqa: E402


def init(name, dtype, shape):
    return numpy_helper.from_array(sample(dtype, shape), name)


def branch(name, out, inits):
    """A graph returning its first initializer (If branches take no inputs)."""
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    node = helper.make_node("Identity", [inits[0].name], [out])
    return helper.make_graph([node], name, [], [y], initializer=inits)


def build():
    # The body of the Loop: (iteration, condition, carried) -> (condition, carried), with an If
    # inside whose branch has an initializer of its own: two levels of scope.
    inner_then = branch("inner_then", "r", [init("deep", np.float32, (3, 2))])
    inner_else = branch("inner_else", "r", [init("deep", np.float16, (3, 2))])
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("If", ["cond_in"], ["r"], name="inner",
                             then_branch=inner_then, else_branch=inner_else),
            helper.make_node("Add", ["carried", "step"], ["carried_out"]),
        ],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, [2])],
        initializer=[init("step", np.float32, (2,))],
    )
    scan_body = helper.make_graph(
        [helper.make_node("Mul", ["s_in", "scale"], ["s_out"])],
        "scan_body",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2])],
        initializer=[init("scale", np.float32, (2,)), init("ids", np.int64, (4,))],
    )
    many = [branch(f"alt{i}", "a", [init("table", np.float32, (2, i + 1))]) for i in range(2)]
    nodes = [
        helper.make_node("If", ["cond"], ["y_if"], name="branch",
                         then_branch=branch("then", "t", [init("w", np.float32, (2,))]),
                         else_branch=branch("else", "e", [init("k", np.float16, (2, 2))])),
        # No name: scoped as Loop_1.
        helper.make_node("Loop", ["trips", "cond", "x"], ["y_loop"], body=body),
        helper.make_node("Scan", ["xs"], ["ys"], name="scan", body=scan_body, num_scan_inputs=1),
        helper.make_node("Constant", [], ["c"], name="const",
                         value=numpy_helper.from_array(np.ones(3, np.float32), "c_value")),
        helper.make_node("Alternatives", ["x"], ["y_alt"], name="pick",
                         domain="dev.ckptscope", options=many),
    ]
    graph = helper.make_graph(
        nodes,
        "subgraphs",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("xs", TensorProto.FLOAT, [3, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ["y_if", "y_loop", "ys", "y_alt"]],
        initializer=[init("w", np.float32, (2,))],
    )
    m = helper.make_model(
        graph,
        producer_name="ckptscope-tests",
        producer_version="1.0",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("dev.ckptscope", 1)],
        doc_string="fixture subgraphs",
    )
    m.model_version = 1
    m.domain = "dev.ckptscope"
    return m


def walk(graph, scope, out):
    """Initializers of `graph` and of its sub-graphs, named as ckptscope names them."""
    for t in graph.initializer:
        out[f"{scope}.{t.name}" if scope else t.name] = numpy_helper.to_array(t)
    count = 0
    for i, node in enumerate(graph.node):
        label = node.name or f"{node.op_type or 'node'}_{i}"
        label = f"{scope}.{label}" if scope else label
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                count += 1 + walk(a.g, f"{label}.{a.name}", out)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for j, g in enumerate(a.graphs):
                    count += 1 + walk(g, f"{label}.{a.name}.{j}", out)
    return count


def main():
    path = os.path.join(ROOT, "onnx", "subgraphs.onnx")
    onnx.save(build(), path)
    m = onnx.load(path)
    arrays = {}
    count = walk(m.graph, "", arrays)
    meta = onnx_metadata(m)
    meta["onnx.subgraphs"] = str(count)
    write_truth(path, arrays, [], meta)


if __name__ == "__main__":
    main()
