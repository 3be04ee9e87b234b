#!/usr/bin/env python3
"""Ground truth for the real checkpoints of tests/fixtures/real/: files shipped inside public
Python packages, written by their authors (nobody here). Each gets `NAME.expected.json` in the
zoo's schema (see zoo.py), read back with real torch.

    python tests/gen/real.py
"""

import json
from pathlib import Path

import zoo

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"


def torchscript_truth(path):
    """`torch.jit.load(f).state_dict()` in the shared fixtures' schema."""
    import hashlib
    import torch

    sd = torch.jit.load(path, map_location="cpu").state_dict()
    out, seen = {}, {}
    for name, t in sd.items():
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        out[name] = {
            "dtype": zoo.ST_DTYPE[t.dtype],
            "shape": list(t.shape),
            "sha256": hashlib.sha256(zoo.tensor_bytes(t)).hexdigest(),
            "shares_storage_with": seen.get(key) if key[1] else None,
        }
        seen.setdefault(key, name)
    return out


def main():
    for path in sorted(REAL.rglob("*")):
        if path.name == "training_args.bin":
            continue  # a pickled transformers class: suspicious, not a weights file
        if path.suffix == ".jit":
            data = torchscript_truth(path)
            Path(f"{path}.expected.json").write_text(json.dumps(data, indent=1) + "\n")
            print(f"{path.name}: {len(data)} tensors (TorchScript state dict)")
            continue
        if path.suffix not in (".pt", ".pth", ".bin", ".ckpt") or not path.is_file():
            continue
        data = zoo.truth(path, {})
        Path(f"{path}.expected.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.name}: {len(data['tensors'])} tensors, weights_only={data['weights_only']}")


if __name__ == "__main__":
    main()
