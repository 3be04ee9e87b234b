"""Writes tests/fixtures/compat/: small real files and, beside each, the truth of
`torch.load(f, weights_only=True)` in the installed torch, found by running it.

    /work/venv/bin/python tests/gen/compat.py

For each file NAME, NAME.expected.json holds:
  loads:        does torch.load(NAME, weights_only=True, map_location="cpu") succeed as it is
  error_global: the global its first error names (None when it loads or fails otherwise)
  needs:        every global torch.serialization.add_safe_globals must be given before it loads,
                in the order torch meets them (found by allowing what each error names and
                loading again)
  loads_after:  whether it loads once those are allowed (False: it fails for another reason)
  blocker:      the last error's first line when it never loads

Only files written here are loaded, so loading them to find the truth runs nothing unknown.
"""

import decimal
import importlib
import json
import os
import pickle
import random
import re
import sys
from collections import OrderedDict

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "compat")


def resolve(path):
    """The object `module.qual.name` names (the longest importable module prefix)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(path)


GLOBAL_RE = re.compile(r"GLOBAL (\S+) was not an allowed global by default")
BUILD_RE = re.compile(r"but got <class '([^']+)'>")
NEWOBJ_RE = re.compile(r"create new object .* but got <class '([^']+)'>")
REASON_RE = re.compile(
    r"(Unsupported operand \d+|Invalid magic number[^\n]*|Cannot use ``weights_only=True``[^\n]*"
    r"|Trying to load unsupported GLOBAL[^\n]*|Can only [^\n]*|Trying to call reduce[^\n]*"
    r"|persistent_load[^\n]*|Only persistent_load[^\n]*)"
)


def reason(e):
    msg = str(e)
    m = REASON_RE.search(msg)
    lines = [l for l in msg.strip().splitlines() if l.strip()]
    return f"{type(e).__name__}: {m.group(1) if m else (lines[0] if lines else '')}"


def truth(path):
    needs, first, blocker = [], None, None
    loads = None
    for _ in range(50):
        allowed = [(resolve(n), n) for n in needs]
        try:
            with torch.serialization.safe_globals(allowed):
                torch.load(path, weights_only=True, map_location="cpu")
            ok = True
        except Exception as e:  # noqa: BLE001 - every failure is a fact to record
            ok = False
            msg = str(e)
            m = GLOBAL_RE.search(msg) or BUILD_RE.search(msg) or NEWOBJ_RE.search(msg)
            name = m.group(1) if m else None
            if name and name.startswith("numpy.") is False and "." not in name:
                name = f"builtins.{name}"
            if loads is None and name:
                first = name
            if name and name not in needs:
                try:
                    resolve(name)
                    needs.append(name)
                except Exception:  # noqa: BLE001
                    blocker = reason(e)
                    ok = None
            else:
                blocker = reason(e)
                ok = None
        if loads is None:
            loads = ok is True
        if ok is True or ok is None:
            break
    return {
        "loads": loads,
        "error_global": None if loads else first,
        "needs": needs,
        "loads_after": ok is True,
        "blocker": None if ok is True else blocker,
    }


def tensors():
    g = torch.Generator().manual_seed(0)
    return OrderedDict(
        [("w", torch.randn(3, 2, generator=g)), ("b", torch.zeros(2))]
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    np.random.seed(0)
    random.seed(0)
    files = {
        "state_dict.pt": (tensors(), {}),
        "state_dict_legacy.pt": (tensors(), {"_use_new_zipfile_serialization": False}),
        "state_dict_proto4.pt": (tensors(), {"pickle_protocol": 4}),
        "numpy_array.pt": ({"a": np.arange(4, dtype=np.int64)}, {}),
        "numpy_scalar.pt": ({"loss": np.float64(0.25)}, {}),
        "numpy_legacy.pt": (
            {"a": np.arange(3, dtype=np.float32)},
            {"_use_new_zipfile_serialization": False},
        ),
        # Hugging Face Trainer's rng_state.pth (trainer._save_rng_state), CPU only.
        "rng_state.pth": (
            {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "cpu": torch.random.get_rng_state(),
            },
            {},
        ),
        # The numpy random objects themselves, as some trainers save them.
        "numpy_random_objects.pth": (
            {"legacy": np.random.RandomState(0), "generator": np.random.default_rng(0)},
            {},
        ),
        "decimal.pt": ({"lr": decimal.Decimal("0.001")}, {}),
        "object_array.pt": ({"names": np.array(["a", 1], dtype=object)}, {}),
    }
    for name, (obj, kwargs) in files.items():
        torch.save(obj, os.path.join(OUT, name), **kwargs)
    # np.save of an object array: a .npy whose data is a pickle.
    np.save(os.path.join(OUT, "object_array.npy"), np.array([{"k": 1}, "x"], dtype=object))
    # A raw pickle (not a torch.save file): torch.load refuses its magic number.
    with open(os.path.join(OUT, "plain.pkl"), "wb") as f:
        pickle.dump({"a": 1}, f, protocol=2)
    for name in sorted(os.listdir(OUT)):
        if name.endswith(".json"):
            continue
        path = os.path.join(OUT, name)
        t = truth(path)
        with open(path + ".expected.json", "w") as f:
            json.dump(t, f, indent=2)
            f.write("\n")
        print(name, json.dumps(t))
    print("torch", torch.__version__, "numpy", np.__version__, "python", sys.version.split()[0])


if __name__ == "__main__":
    main()
