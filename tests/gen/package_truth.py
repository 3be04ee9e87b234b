#!/usr/bin/env python3
"""Tensor ground truth for the package fixtures, from torch.load (weights_only=True): for each
weight-bearing pickle, the tensors a conversion must write (a Lightning checkpoint's
`state_dict`, a shard's whole dict), with dtype, shape and the sha256 of their contiguous bytes.

    cd tests/fixtures/package && python ../../gen/package_truth.py
"""
import hashlib, json, os
import torch

def digest(t):
    t = t.contiguous()
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"").hexdigest()

def tensors(path):
    obj = torch.load(path, weights_only=True, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    return {k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape),
                "sha256": digest(v)} for k, v in obj.items()}

out = {}
for root, name in [("hf_run", "pytorch_model-00001-of-00002.bin"),
                   ("hf_run", "pytorch_model-00002-of-00002.bin")]:
    out[f"{root}/{name}"] = tensors(os.path.join(root, name))
ck = "lightning_run/lightning_logs/version_0/checkpoints"
for name in sorted(os.listdir(ck)):
    out[f"{ck}/{name}"] = tensors(os.path.join(ck, name))
with open("tensors.expected.json", "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
