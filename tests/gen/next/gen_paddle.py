"""PaddlePaddle files: `paddle.save(net.state_dict())` as .pdparams with pickle protocols 2, 3
and 4, a split-big-parameter .pdparams (UnpackBigParamInfor@@), an optimizer .pdopt, and
`paddle.jit.save` programs (PIR .json and legacy .pdmodel, each with .pdiparams).
Writes tests/fixtures/next/paddle/.

    $VENVS/paddle/bin/python gen_paddle.py      (paddlepaddle; never with tensorflow)

Truth:
- .pdparams / .pdopt: `tensors` keyed by the structured name as paddle.load returns it
  (`fc1.weight`), each with `parameter_name` from the file's `StructuredToParameterName@@` map
  (`linear_0.w_0`). Read back with paddle.load(path, return_numpy=True). `metadata.raw_keys`
  lists the pickle's top-level keys as stored (read with pickle, so split parts `key@@.N`,
  `StructuredToParameterName@@` and `UnpackBigParamInfor@@` are visible), `pickle_protocol`
  and `pickle_globals` (every global the pickle imports).
- split file: paddle splits an ndarray above (2**30 - 1) bytes into `key@@.0`, `key@@.1`, ...
  for protocols 2 and 3. To get a small file gen_paddle runs paddle's own
  framework.io_utils._unpack_saved_dict with that constant set to 63 bytes (source patched in
  memory, nothing else changed); paddle.load joins the parts back, which is the truth.
- jit programs (`PREFIX.json` or `PREFIX.pdmodel`, with `PREFIX.pdiparams`): `tensors` keyed
  by parameter name, from paddle.static.load_program_state / paddle.jit.load, with
  `structured_name` where paddle.jit.load's state_dict gives one; `metadata.params_order` is the
  order of the tensors inside .pdiparams (sorted parameter names, as paddle writes them).
"""

import inspect
import io
import os
import pickle
import pickletools
import subprocess
import sys

import numpy as np

GEN = "gen_paddle.py"


def main_dygraph():
    import paddle

    from _truth import out_dir, truth, versions, write_truth

    vers = versions("paddlepaddle", "numpy", "protobuf")
    out = out_dir("paddle")
    paddle.seed(41)
    np.random.seed(41)

    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc1 = paddle.nn.Linear(6, 8)
            self.bn = paddle.nn.BatchNorm1D(8)
            self.emb = paddle.nn.Embedding(10, 4)
            self.conv = paddle.nn.Conv2D(1, 2, 3)
            self.fc2 = paddle.nn.Linear(8, 3, bias_attr=False)
            self.ln = paddle.nn.LayerNorm(3)

        def forward(self, x):
            return self.ln(self.fc2(paddle.nn.functional.relu(self.bn(self.fc1(x)))))

    net = Net()
    # an extra float16 and int64 buffer so more dtypes are present
    net.register_buffer("half_buf", paddle.to_tensor(np.linspace(-1, 1, 5).astype("float16")))
    net.register_buffer("step_buf", paddle.to_tensor(np.array([7, 8], "int64")))

    class Recorder(pickle.Unpickler):
        def __init__(self, f):
            super().__init__(f)
            self.globals = []

        def find_class(self, module, name):
            full = f"{module}.{name}"
            if full not in self.globals:
                self.globals.append(full)
            return super().find_class(module, name)

    def raw_info(path):
        data = open(path, "rb").read()
        proto = next((a for op, a, _ in pickletools.genops(data) if op.name == "PROTO"), None)
        r = Recorder(io.BytesIO(data))
        obj = r.load()
        info = {"pickle_protocol": proto, "pickle_globals": r.globals,
                "raw_keys": list(obj.keys()) if isinstance(obj, dict) else None}
        if isinstance(obj, dict):
            info["structured_to_parameter_name"] = obj.get("StructuredToParameterName@@")
            if "UnpackBigParamInfor@@" in obj:
                info["unpack_big_param_info"] = {
                    k: {"OriginShape": list(v["OriginShape"]), "slices": v["slices"]}
                    for k, v in obj["UnpackBigParamInfor@@"].items()}
        return info

    def state_truth(path):
        loaded = paddle.load(path, return_numpy=True)
        info = raw_info(path)
        names = info.get("structured_to_parameter_name") or {}
        tensors, other = {}, {}

        def walk(x, prefix):
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(v, f"{prefix}{k}/")
            elif isinstance(x, np.ndarray):
                key = prefix[:-1]
                tensors[key] = truth(x, parameter_name=names.get(key))
            else:
                other[prefix[:-1]] = x
        walk(loaded, "")
        return tensors, other, info

    sd = net.state_dict()
    for proto in (2, 3, 4):
        p = os.path.join(out, f"net_p{proto}.pdparams")
        paddle.save(sd, p, protocol=proto)
        tensors, other, info = state_truth(p)
        write_truth(p, tensors, generator=GEN, library_versions=vers,
                    naming="structured name (state_dict key); parameter_name beside",
                    metadata={"non_tensor_values": other, **info})

    # Optimizer state after one step
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=net.parameters())
    x = paddle.to_tensor(np.random.standard_normal((4, 6)).astype("float32"))
    loss = net(x).mean()
    loss.backward()
    opt.step()
    opt.clear_grad()
    p = os.path.join(out, "net.pdopt")
    paddle.save(opt.state_dict(), p)
    tensors, other, info = state_truth(p)
    write_truth(p, tensors, generator=GEN, library_versions=vers,
                naming="optimizer state_dict key (parameter_name + accumulator suffix); "
                       "nested maps joined by '/'",
                metadata={"non_tensor_values": other, **info})
    p2 = os.path.join(out, "net_after_step.pdparams")
    paddle.save(net.state_dict(), p2)
    tensors, other, info = state_truth(p2)
    write_truth(p2, tensors, generator=GEN, library_versions=vers,
                naming="structured name; parameter_name beside",
                metadata={"non_tensor_values": other, **info,
                          "pairs_with": "net.pdopt (the same training step)"})

    # Split big parameters: paddle's own splitting code with a 63-byte limit
    from paddle.framework import io_utils
    src = inspect.getsource(io_utils._unpack_saved_dict)
    assert "(2**30 - 1)" in src
    ns = dict(vars(io_utils))
    exec(src.replace("(2**30 - 1)", "(63)"), ns)
    from paddle.framework import io as pio
    orig = pio._unpack_saved_dict
    pio._unpack_saved_dict = ns["_unpack_saved_dict"]
    try:
        for proto in (2, 3):
            p = os.path.join(out, f"net_split_p{proto}.pdparams")
            paddle.save(sd, p, protocol=proto)
            tensors, other, info = state_truth(p)
            write_truth(p, tensors, generator=GEN, library_versions=vers,
                        naming="structured name after paddle.load joined the @@.N parts",
                        metadata={"non_tensor_values": other, **info,
                                  "note": "written with the split limit set to 63 bytes "
                                          "(paddle's default: 2**30 - 1)"})
    finally:
        pio._unpack_saved_dict = orig

    # jit.save: PIR program (.json) by default in paddle 3
    return net


def jit_save(kind):
    """kind 'pir' (.json, the default of paddle 3) or 'legacy' (.pdmodel, FLAGS_enable_pir_api=0,
    run in a process of its own: the flag must be set before paddle is imported)."""
    import paddle

    from _truth import out_dir, truth, versions, write_truth

    vers = versions("paddlepaddle", "numpy", "protobuf")
    out = out_dir("paddle")
    paddle.seed(42)

    class Small(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc1 = paddle.nn.Linear(4, 5)
            self.fc2 = paddle.nn.Linear(5, 2)

        def forward(self, x):
            return self.fc2(paddle.nn.functional.relu(self.fc1(x)))

    net = Small()
    net.eval()
    prefix = os.path.join(out, f"jit_{kind}", "inference")
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    for f in os.listdir(os.path.dirname(prefix)):
        os.remove(os.path.join(os.path.dirname(prefix), f))
    paddle.jit.save(net, prefix,
                    input_spec=[paddle.static.InputSpec([None, 4], "float32", name="x")])
    files = sorted(os.listdir(os.path.dirname(prefix)))
    structured = {}
    for k, v in net.state_dict().items():
        structured[v.name] = k
    # .pdiparams holds the persistable tensors back to back without names, in sorted order of
    # their parameter names (the names live in the program file); the truth is keyed by those
    # names, and checked against what paddle.jit.load reads back (it renames the parameters,
    # so the check is by value, in the same sorted order).
    params = {v.name: v.numpy() for v in net.state_dict().values()}
    tensors = {name: truth(a, structured_name=structured[name], file_index=i)
               for i, (name, a) in enumerate(sorted(params.items()))}
    loaded = paddle.jit.load(prefix)
    back = sorted((v.name, v.numpy()) for v in loaded.state_dict().values())
    assert [truth(a)["sha256"] for _, a in back] == \
        [t["sha256"] for _, t in sorted(tensors.items())]
    jit_names = [n for n, _ in back]
    prog_file = [f for f in files if f.endswith((".json", ".pdmodel"))]
    md = {"files": files, "program_file": prog_file,
          "params_order": sorted(params), "pir": kind == "pir",
          "paddle_jit_load_names": jit_names,
          "input_spec": [{"name": "x", "shape": [None, 4], "dtype": "float32"}]}
    if kind == "pir":
        import json
        try:
            prog = json.load(open(os.path.join(os.path.dirname(prefix), prog_file[0])))
            md["program_top_level_keys"] = sorted(prog) if isinstance(prog, dict) else None
        except Exception as e:  # noqa: BLE001
            md["program_json_error"] = str(e)
    else:
        try:

            from paddle.base.proto import framework_pb2
            pd = framework_pb2.ProgramDesc()
            pd.ParseFromString(open(os.path.join(os.path.dirname(prefix), prog_file[0]),
                                    "rb").read())
            md["program_ops"] = [op.type for b in pd.blocks for op in b.ops]
            md["program_persistable_vars"] = sorted(
                v.name for b in pd.blocks for v in b.vars if v.persistable)
        except Exception as e:  # noqa: BLE001
            md["program_proto_error"] = str(e)
    info = prefix + ".pdiparams.info"
    if os.path.exists(info):  # a pickle written by paddle (structured names of the params)
        with open(info, "rb") as f:
            md["pdiparams_info_pickle"] = repr(pickle.load(f))
    write_truth(prefix + ".pdiparams", tensors, generator=GEN, library_versions=vers,
                naming="parameter name; structured_name (state_dict key of the Layer) beside",
                metadata=md)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--jit":
        jit_save(sys.argv[2])
        sys.exit(0)
    here = os.path.dirname(os.path.abspath(__file__))
    main_dygraph()
    for kind, env in (("pir", {}), ("legacy", {"FLAGS_enable_pir_api": "0"})):
        r = subprocess.run([sys.executable, os.path.join(here, GEN), "--jit", kind],
                           env={**os.environ, **env}, cwd=here)
        if r.returncode:
            print(f"jit save ({kind}) failed with exit code {r.returncode}")
