#!/usr/bin/env python3
"""Writes the idiom zoo: many ways real code saves checkpoints, with real torch, and the ground
truth of each file as torch itself reads it back.

    python tests/gen/zoo.py            # (re)writes tests/fixtures/zoo/

For every `NAME.pt` it writes `NAME.pt.expected.json`:

- `tensors`: every tensor reachable in what `torch.load` returns, by dotted path from the root
  (dict keys, list indices, object attributes), with its dtype (safetensors spelling), shape,
  stride, storage offset, the sha256 of its contiguous little-endian bytes, whether it is an
  `nn.Parameter`, the device it was saved from, and the first earlier name it shares a storage
  with;
- `values`: the non-tensor tree in the canonical form ckptscope's tests compare against
  (see `canon` below): tensors are "<tensor>", a container seen before is
  "<same object as `path`>";
- `unsupported`: tensors safetensors cannot hold (quantized, sparse, nested, meta, complex128),
  with what they are;
- `weights_only`: whether `torch.load(f, weights_only=True)` reads the file in this torch; when
  it does not, the values come from `weights_only=False` (every file here is benign).

The files are tiny; values come from fixed seeds, but a rerun still changes some bytes (legacy
files name their storages by memory address).
"""

import collections
import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "zoo"

ST_DTYPE = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.uint16: "U16",
    torch.uint32: "U32",
    torch.uint64: "U64",
    torch.bool: "BOOL",
    torch.complex64: "C64",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ",
    torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
    torch.float8_e8m0fnu: "F8_E8M0",
}


def tensor_bytes(t):
    c = t.detach().contiguous()
    if c.numel() == 0:
        return b""
    return c.reshape(-1).view(torch.uint8).numpy().tobytes()


def float_text(f):
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def canon(value, path, seen, tensors, devices):
    """The value tree as ckptscope shows it, recording tensors on the way."""
    if isinstance(value, torch.Tensor):
        record_tensor(value, path, tensors, devices)
        return "<tensor>"
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return str(value)
        return value
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, complex):
        return f"<complex {value!r}>"
    if isinstance(value, torch.device):
        return f"<device {value}>"
    if isinstance(value, torch.dtype):
        return f"<{value}>"
    if isinstance(value, (bytes, bytearray)):
        b = bytes(value)
        if len(b) <= 64 and all(32 <= c < 127 for c in b):
            return 'b"' + b.decode() + '"'
        return f"<{len(b)} bytes>"
    if isinstance(value, slice):
        return f"<slice({value.start!r}, {value.stop!r}, {value.step!r})>"
    if isinstance(value, range):
        return f"<{value!r}>"
    if type(value).__module__.split(".")[0] == "numpy":
        return "<numpy>"  # arrays, scalars and dtypes: compared by kind only
    # Containers: described once.
    if id(value) in seen:
        return f"<same object as `{seen[id(value)]}`>"
    seen[id(value)] = path
    join = lambda k: f"{path}.{k}" if path else str(k)
    if isinstance(value, dict):
        return {key_text(k): canon(v, join(key_text(k)), seen, tensors, devices) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [canon(v, join(i), seen, tensors, devices) for i, v in enumerate(value)]
    raise TypeError(f"{path}: no canonical form for {type(value)}")


def key_text(k):
    if k is None:
        return "None"
    if isinstance(k, bool):
        return "True" if k else "False"
    return str(k)


def special_kind(t):
    """Why safetensors cannot hold `t` (None when it can)."""
    if t.is_quantized:
        return "quantized"
    if t.layout != torch.strided:
        return "sparse"
    if t.is_nested:
        return "nested"
    if t.device.type == "meta":
        return "meta"
    if t.dtype not in ST_DTYPE:
        return f"dtype {t.dtype}"
    return None


def record_tensor(t, name, tensors, devices):
    kind = special_kind(t)
    if kind is not None:
        tensors[name] = {"unsupported": kind, "_storage": None}
        return
    storage = t.untyped_storage()
    shares = None
    for other, info in tensors.items():
        if info["_storage"] == (storage.data_ptr(), storage.nbytes()) and storage.nbytes() > 0:
            shares = other
            break
    tensors[name] = {
        "dtype": ST_DTYPE[t.dtype],
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
        "sha256": hashlib.sha256(tensor_bytes(t)).hexdigest(),
        "parameter": isinstance(t, nn.Parameter),
        "device": devices["_locations"].get(storage.data_ptr(), "cpu"),
        "shares_storage_with": shares,
        "_storage": (storage.data_ptr(), storage.nbytes()),
    }


def truth(path, devices=None):
    """What torch reads back from `path`. The device of each tensor is the location its storage
    records in the file (torch hands it to map_location); `devices` is unused and kept for the
    callers' convenience."""
    locations = {}

    def remember(storage, location):
        locations[storage.data_ptr()] = location
        return storage

    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(path, weights_only=True, map_location=remember)
    except Exception as e:
        # The line of torch's message that says what it refused.
        text = str(e).split("WeightsUnpickler error:", 1)[-1].strip()
        error = text.splitlines()[0] if text else str(e)
        locations.clear()
        loaded = torch.load(path, weights_only=False, map_location=remember)
    devices = {"_locations": locations}
    tensors = {}
    values = canon(loaded, "", {}, tensors, devices)
    unsupported = {n: info["unsupported"] for n, info in tensors.items() if "unsupported" in info}
    tensors = {n: info for n, info in tensors.items() if "unsupported" not in info}
    for info in tensors.values():
        del info["_storage"]
    return {
        "weights_only": error is None,
        "weights_only_error": error,
        "tensors": tensors,
        "unsupported": unsupported,
        "values": values,
    }


# --- idioms -----------------------------------------------------------------------------------


class Pairs:
    """Pickles as `collections.OrderedDict([[name, tensor], ...])`, as old checkpoints do."""

    def __init__(self, items, kind=list, ctor=collections.OrderedDict):
        self.items, self.kind, self.ctor = items, kind, ctor

    def __reduce__(self):
        return (self.ctor, ([self.kind(p) for p in self.items],))


class FromMapping:
    """Pickles as `OrderedDict({...})`: the constructor called with a mapping."""

    def __init__(self, mapping):
        self.mapping = mapping

    def __reduce__(self):
        return (collections.OrderedDict, (dict(self.mapping),))


class FromZip:
    """Pickles as `OrderedDict(zip(names, tensors))`: a constructor argument ckptscope cannot
    read as pairs (an iterator built by a call), so it must say its list may be incomplete."""

    def __init__(self, mapping):
        self.mapping = mapping

    def __reduce__(self):
        return (collections.OrderedDict, (zip(list(self.mapping), list(self.mapping.values())),))


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))


def llama_like():
    torch.manual_seed(1)
    emb = torch.randn(16, 4)
    sd = collections.OrderedDict()
    sd["model.embed_tokens.weight"] = emb
    sd["model.layers.0.self_attn.q_proj.weight"] = torch.randn(4, 4)
    sd["model.layers.0.input_layernorm.weight"] = torch.ones(4)
    sd["model.norm.weight"] = torch.ones(4)
    sd["lm_head.weight"] = emb  # tied
    return sd


def idioms():
    torch.manual_seed(0)
    sd = mlp().state_dict()
    items = list(sd.items())
    yield "flat_p2", sd, {}
    yield "flat_p1", sd, {"pickle_protocol": 1}
    yield "flat_p4", sd, {"pickle_protocol": 4}
    yield "flat_p5", sd, {"pickle_protocol": 5}
    yield "flat_legacy_p2", sd, {"_use_new_zipfile_serialization": False}
    yield "flat_legacy_p4", sd, {"_use_new_zipfile_serialization": False, "pickle_protocol": 4}
    for legacy in (False, True):
        suffix = "_legacy" if legacy else ""
        opts = {"_use_new_zipfile_serialization": not legacy}
        yield f"pairs_lists{suffix}", Pairs(items), opts
        yield f"pairs_tuples{suffix}", Pairs(items, tuple), opts
        yield f"dict_pairs{suffix}", Pairs(items, tuple, dict), opts
        yield f"ordered_from_mapping{suffix}", FromMapping(sd), opts
    yield "pairs_p4", Pairs(items), {"pickle_protocol": 4}
    yield "hf_flat_tied", llama_like(), {}
    yield "hf_flat_tied_legacy", llama_like(), {"_use_new_zipfile_serialization": False}

    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    yield "lightning", {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": collections.OrderedDict((f"model.{k}", v) for k, v in model.state_dict().items()),
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": {"lr": 1e-3, "layers": [4, 8, 2], "name": "mlp"},
    }, {}
    yield "model_optimizer_epoch", {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 7,
        "best_loss": 0.25,
    }, {}
    yield "optimizer_only", opt.state_dict(), {}
    yield "ddp_module", collections.OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items()), {}
    yield "bare_tensor", torch.arange(12, dtype=torch.float32).reshape(3, 4), {}
    yield "tensor_list", [torch.ones(2), torch.zeros(3, dtype=torch.int64), torch.randn(2, 2)], {}
    yield "tensor_tuple_legacy", (torch.ones(2), torch.full((2,), 7, dtype=torch.int16)), {
        "_use_new_zipfile_serialization": False
    }

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    yield "views", {
        "base": base,
        "t": base.t(),
        "row": base[1],
        "cols": base[:, ::2],
        "expanded": torch.ones(1, 3).expand(4, 3),
        "scalar": torch.tensor(2.5),
        "empty": torch.empty(0, 3),
    }, {}
    yield "dtypes", {str(dt).removeprefix("torch."): torch.arange(6).to(dt) if dt != torch.bool else torch.tensor([True, False, True]) for dt in ST_DTYPE}, {}
    yield "dtypes_legacy", {str(dt).removeprefix("torch."): torch.arange(6).to(dt) for dt in (torch.float16, torch.bfloat16, torch.int8, torch.float64)}, {"_use_new_zipfile_serialization": False}

    p = nn.Parameter(torch.randn(3))
    frozen = nn.Parameter(torch.randn(2), requires_grad=False)
    with_state = nn.Parameter(torch.randn(2))
    with_state.tag = "lora"
    grad = torch.randn(2).requires_grad_()
    attr = torch.randn(2)
    attr.note = "hello"
    yield "parameters", {"p": p, "frozen": frozen, "with_state": with_state, "grad": grad, "attr": attr}, {}

    shared = [1, 2, 3]
    od = collections.OrderedDict([("b", 2), ("a", 1)])
    counter = collections.Counter("abracadabra")
    yield "values", {
        "ints": [0, -1, 255, 256, 65535, -(2**31), 2**62, 2**70, -(2**70)],
        "floats": [0.5, -2.0, 1e-300, float("inf"), float("nan")],
        "text": "héllo ✓",
        "none": None,
        "flags": (True, False),
        "bytes": b"abc",
        "blob": bytes(range(100)),
        "bytearray": bytearray(b"xyz"),
        "complex": complex(1.5, -2.0),
        "device_cpu": torch.device("cpu"),
        "device_cuda": torch.device("cuda", 1),
        "dtype": torch.bfloat16,
        "size": torch.Size([2, 3]),
        "set": {3},
        "frozenset": frozenset({"x"}),
        "ordered": od,
        "counter": counter,
        "shared_a": shared,
        "shared_b": shared,
        "nested": {"deep": {"deeper": [{"k": 1}, []]}},
        "empty_dict": {},
        "int_keys": {0: "zero", 1: "one"},
        "weight": torch.ones(2),
    }, {}
    yield "exotic_values", {
        "slice": slice(1, 10, 2),
        "range": range(0, 10, 3),
        "default": collections.defaultdict(list, {"a": [1]}),
    }, {}
    yield "flat_legacy_p1", sd, {"_use_new_zipfile_serialization": False, "pickle_protocol": 1}
    yield "flat_legacy_p5", sd, {"_use_new_zipfile_serialization": False, "pickle_protocol": 5}
    dense = torch.tensor([[0.0, 1.5], [2.5, 0.0]])
    yield "special_tensors", {
        "plain": torch.ones(2),
        "quantized": torch.quantize_per_tensor(torch.tensor([0.5, 1.0]), 0.1, 0, torch.qint8),
        "sparse_coo": dense.to_sparse(),
        "sparse_csr": dense.to_sparse_csr(),
        "meta": torch.empty(3, 4, device="meta"),
        "complex128": torch.zeros(2, dtype=torch.complex128),
    }, {}
    yield "nested_tensor", {"nested": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])}, {}
    yield "cuda_saved", {"w": torch.randn(2, 2), "b": torch.zeros(2)}, {"_location": "cuda:0"}
    yield "cuda_saved_legacy", {"w": torch.randn(2, 2)}, {"_location": "cuda:0", "_use_new_zipfile_serialization": False}


def odd_idioms():
    """Benign files ckptscope cannot fully follow (they are not weights_only-loadable either)."""
    yield "ordered_from_zip", FromZip(mlp().state_dict()), {}
    # A bare storage, no tensor: the note about storages no tensor views must show.
    yield "storage_root", torch.arange(4, dtype=torch.float32).untyped_storage(), {}


def save(obj, path, opts):
    opts = dict(opts)
    location = opts.pop("_location", None)
    if location is None:
        torch.save(obj, path, **opts)
        return {}
    # Save as if the tensors lived on `location` (no GPU here): the storage location tag is
    # what torch writes for a CUDA tensor; map_location="cpu" reads it back.
    import torch.serialization as ser

    original = ser.location_tag
    ser.location_tag = lambda storage: location
    try:
        torch.save(obj, path, **opts)
    finally:
        ser.location_tag = original
    return {name: location for name in obj}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    names = []
    for name, obj, opts in idioms():
        path = OUT / f"{name}.pt"
        devices = save(obj, path, opts)
        data = truth(path, devices)
        (OUT / f"{name}.pt.expected.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        names.append(name)
        print(f"{name}: {len(data['tensors'])} tensors, weights_only={data['weights_only']}")
    print(f"{len(names)} files in {OUT}", file=sys.stderr)
    odd = OUT.parent / "zoo_odd"
    odd.mkdir(exist_ok=True)
    for name, obj, opts in odd_idioms():
        path = odd / f"{name}.pt"
        save(obj, path, opts)
        try:
            data = truth(path, {})
        except TypeError:
            data = {"weights_only": None, "tensors": {}, "values": None}
        (odd / f"{name}.pt.expected.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {len(data['tensors'])} tensors, weights_only={data['weights_only']}")


if __name__ == "__main__":
    main()
