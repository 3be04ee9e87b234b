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


def main():
    for path in sorted(REAL.iterdir()):
        if path.suffix not in (".pt", ".pth", ".bin", ".ckpt"):
            continue
        data = zoo.truth(path, {})
        Path(f"{path}.expected.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.name}: {len(data['tensors'])} tensors, weights_only={data['weights_only']}")


if __name__ == "__main__":
    main()
