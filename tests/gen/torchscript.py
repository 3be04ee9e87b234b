"""Writes the TorchScript fixtures of tests/fixtures/torchscript/ with real torch.

    /work/venv/bin/python tests/gen/torchscript.py [--check-convert target/debug/ckptscope]

For each fixture NAME.pt it writes:

- NAME.pt.expected.json: the ground truth, `torch.jit.load(NAME.pt).state_dict()`: for every
  entry its dtype (safetensors spelling), shape, the sha256 of its contiguous little-endian
  bytes, and the first earlier entry (in state_dict order) whose storage it shares (the schema
  of ../shared/fixtures/*.expected.json);
- NAME.pt.roundtrip.json: the benign ones only: a fresh eager module (other random weights)
  given that state dict with `load_state_dict` reproduces the scripted module's output on a
  fixed input; the input, the output's sha256 and `reproduced` are recorded.

With --check-convert BIN it writes nothing: it runs `BIN convert` on every committed benign
fixture, loads the safetensors output into a fresh eager module with `load_state_dict` and
checks that the outputs equal the TorchScript module's.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Dict, List, Optional

import torch
from torch import nn

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torchscript")

ST_DTYPE = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class Scripted(nn.Module):
    """Submodules, a Sequential, buffers, a tied weight, a missing bias and a tensor attribute
    that is neither a parameter nor a buffer (so not in the state dict)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.blocks = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.LayerNorm(6))
        self.out = nn.Linear(6, 10, bias=False)
        self.out.weight = self.embed.weight  # tied
        self.register_buffer("pos", torch.arange(6, dtype=torch.float32) / 6)
        self.scale = torch.tensor(0.5)

    def forward(self, tokens: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos
        h = self.blocks(h) * self.scale
        c = self.bn(self.conv(image)).mean(dim=[2, 3])
        return self.out(h + c.sum(dim=1, keepdim=True).unsqueeze(1))


class Traced(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 8)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(8, 2)
        self.norm = nn.BatchNorm1d(8)

    def forward(self, x):
        return self.fc2(self.act(self.norm(self.fc1(x))))


class Lists(nn.Module):
    """Int, float, bool and str lists, a dict and tuple attributes: `build_intlist` and friends
    and `restore_type_tag` in data.pkl; a tensor constant in constants.pkl."""

    sizes: List[int]
    weights: List[float]
    flags: List[bool]
    names: List[str]
    table: Dict[str, int]
    limit: Optional[int]

    def __init__(self):
        super().__init__()
        self.sizes = [3, 1, 4, 1, 5]
        self.weights = [0.25, 0.5]
        self.flags = [True, False, True]
        self.names = ["a", "b"]
        self.table = {"x": 1, "y": 2}
        self.limit = None
        self.proj = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = torch.tensor([1.0, -1.0, 0.5])
        y = self.proj(x) + offset * self.weights[0]
        return y * float(self.sizes[2] + self.table["y"])


class WritesFile(nn.Module):
    """Its forward writes a file with torch.save (aten::save)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, "/tmp/ckptscope-torchscript-wrote-this.pt")
        return self.lin(x)


def define_custom_op():
    lib = torch.library.Library("ckptscope_evil", "DEF")
    lib.define("run(Tensor x) -> Tensor")
    lib.impl("run", lambda x: x.clone(), "CompositeExplicitAutograd")
    return lib


class CustomOp(nn.Module):
    """Calls an operator of a custom namespace: native code from a library outside torch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.ckptscope_evil.run(self.lin(x))


def contiguous_sha(t: torch.Tensor) -> str:
    t = t.detach().contiguous()
    if t.dim() == 0:
        t = t.reshape(1)
    data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return hashlib.sha256(data).hexdigest()


def truth(path: str) -> dict:
    sd = torch.jit.load(path).state_dict()
    out = {}
    storages = []
    for name, t in sd.items():
        ptr = t.untyped_storage().data_ptr()
        shared = next((n for n, p in storages if p == ptr and t.numel()), None)
        storages.append((name, ptr))
        out[name] = {
            "dtype": ST_DTYPE[t.dtype],
            "shape": list(t.shape),
            "sha256": contiguous_sha(t),
            "shares_storage_with": shared,
        }
    return out


def save(module: torch.jit.ScriptModule, name: str) -> str:
    path = os.path.join(OUT, name)
    torch.jit.save(module, path)
    with open(path + ".expected.json", "w") as f:
        json.dump(truth(path), f, indent=1, sort_keys=True)
        f.write("\n")
    size = os.path.getsize(path)
    assert size < 100_000, f"{name} is {size} bytes"
    return path


def outputs_equal(a, b) -> bool:
    return torch.equal(a, b)


def roundtrip(path: str, fresh: nn.Module, inputs: tuple, state_dict) -> bool:
    """Loads `state_dict` into `fresh` (eager, other weights) and compares its output with the
    TorchScript module's."""
    scripted = torch.jit.load(path).eval()
    fresh.load_state_dict(state_dict, strict=True)
    fresh.eval()
    with torch.no_grad():
        want = scripted(*inputs)
        got = fresh(*inputs)
    return outputs_equal(want, got), want


def record_roundtrip(path: str, make, inputs: tuple):
    torch.manual_seed(1234)  # other weights than the saved ones
    ok, want = roundtrip(path, make(), inputs, torch.jit.load(path).state_dict())
    assert ok, f"{path}: load_state_dict does not reproduce the outputs"
    with open(path + ".roundtrip.json", "w") as f:
        json.dump(
            {
                "inputs": [{"dtype": str(i.dtype), "values": i.tolist()} for i in inputs],
                "output_shape": list(want.shape),
                "output_sha256": contiguous_sha(want),
                "reproduced": ok,
                "how": "torch.jit.load(f).state_dict() loaded with load_state_dict(strict=True) "
                "into a freshly initialised eager module; outputs compared with torch.equal",
            },
            f,
            indent=1,
        )
        f.write("\n")


def check_convert(binary: str, path: str, make, inputs: tuple):
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.safetensors")
        run = subprocess.run([binary, "convert", path, "-o", out], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{path}: convert failed: {run.stderr}")
        torch.manual_seed(999)
        converted = load_file(out)
        # Tied weights are stored once; the aliases come back from the metadata.
        sd = torch.jit.load(path).state_dict()
        for name in sd:
            if name not in converted:
                from safetensors import safe_open

                with safe_open(out, "pt") as f:
                    alias = f.metadata().get(name)
                converted[name] = converted[alias]
        ok, _ = roundtrip(path, make(), inputs, converted)
        print(f"{os.path.basename(path)}: convert + load_state_dict reproduces outputs: {ok}")
        if not ok:
            sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check-convert", metavar="BIN")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)

    benign = []
    torch.manual_seed(0)
    m = Scripted().eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
        m.bn.num_batches_tracked.fill_(7)
    inputs = (torch.tensor([[1, 2, 3], [4, 5, 9]]), torch.linspace(-1, 1, 2 * 25).reshape(2, 1, 5, 5))
    benign.append(("scripted.pt", torch.jit.script(m), Scripted, inputs))

    torch.manual_seed(1)
    t = Traced().eval()
    x = torch.linspace(-2, 2, 15).reshape(3, 5)
    benign.append(("traced.pt", torch.jit.trace(t, (x,)), Traced, (x,)))

    torch.manual_seed(2)
    lists = Lists().eval()
    x = torch.linspace(-1, 1, 8).reshape(2, 4)
    benign.append(("lists.pt", torch.jit.script(lists), Lists, (x,)))

    if args.check_convert:
        for name, _, make, inputs in benign:
            check_convert(args.check_convert, os.path.join(OUT, name), make, inputs)
        return
    for name, module, make, inputs in benign:
        path = save(module, name)
        record_roundtrip(path, make, inputs)

    torch.manual_seed(3)
    save(torch.jit.script(WritesFile()), "writes_file.pt")
    lib = define_custom_op()
    torch.manual_seed(4)
    save(torch.jit.script(CustomOp()), "custom_op.pt")
    del lib
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
