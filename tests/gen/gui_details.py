#!/usr/bin/env python3
"""Writes tests/fixtures/gui/details.safetensors and its truth, for the window's details tests.

    /work/venv/bin/python tests/gen/gui_details.py

It holds what made the window hard to read:

- a name longer than the table's name column (`encoder.layer.0.attention.output...`), whose
  full text must be readable on hover;
- a row vector `[1, 512]` and a column vector `[512, 1]`, whose heatmaps drawn to the matrix's
  aspect were lines one pixel thin;
- a small `[8, 8]` matrix, drawn as before.

Values are a deterministic ramp (no random state), written with Python safetensors. The truth
`details.safetensors.expected.json` records, for every tensor, its dtype, shape and the sha256
of its bytes, read back with `safetensors.numpy.load_file`.
"""

import hashlib
import json
import pathlib

import numpy as np
from safetensors.numpy import load_file, save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "gui"
LONG = "encoder.layer.0.attention.output.dense.lora_adapter.scaling_factors.weight"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {
        LONG: np.linspace(-1.0, 1.0, 512, dtype=np.float32).reshape(1, 512),
        "pooler.column": np.linspace(0.0, 2.0, 512, dtype=np.float32).reshape(512, 1),
        "small.weight": np.arange(64, dtype=np.float32).reshape(8, 8) / 64.0,
    }
    path = OUT / "details.safetensors"
    save_file(tensors, str(path), metadata={"made_by": "tests/gen/gui_details.py"})
    back = load_file(str(path))
    truth = {
        name: {
            "dtype": "F32",
            "shape": list(a.shape),
            "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
        }
        for name, a in sorted(back.items())
    }
    (OUT / "details.safetensors.expected.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
