#!/usr/bin/env python3
"""Two training outputs as users receive them, written by the real libraries, for the folder
(package) view, convert-all and the inference package:

- hf_run/: a Hugging Face Trainer run (transformers itself): a tiny Llama trained 4 steps with
  checkpoints every 2 (checkpoint-2/, checkpoint-4/: model.safetensors, optimizer.pt,
  scheduler.pt, rng_state.pth, trainer_state.json, training_args.bin, configs, tokenizer), the
  final model at the top as a *sharded pickle* (pytorch_model-0000N-of-00002.bin +
  pytorch_model.bin.index.json, the layout transformers 4 wrote with torch.save), its config,
  tokenizer files and a README.
- lightning_run/: a Lightning-style run (torch.save of the dict Lightning writes: state_dict,
  optimizer_states, lr_schedulers, epoch, global_step, ...) under
  lightning_logs/version_0/checkpoints/epoch=E-step=S.ckpt, plus last.ckpt and hparams.yaml.

Ground truth beside each folder (package.expected.json): every file's role as this script wrote
it, and what torch.load(weights_only=True) does with every pickle (loads, or the error).

    cd tests/fixtures/package && python ../../gen/package_runs.py && python ../../gen/package_truth.py
"""
import json, os, shutil, hashlib
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments,
                          PreTrainedTokenizerFast)
from tokenizers import Tokenizer, models, pre_tokenizers
from torch.utils.data import Dataset

torch.manual_seed(0)
truth = {}


def weights_only(path):
    try:
        torch.load(path, weights_only=True, map_location="cpu")
        return "loads"
    except Exception as e:  # the message torch gives
        # torch names what it refused on a line of its long message
        for line in str(e).splitlines():
            if "Unsupported global" in line or "Unsupported operand" in line:
                return "refused: " + line.strip()[:200]
        return "refused: " + str(e).splitlines()[0][:200]


class D(Dataset):
    def __len__(self): return 16
    def __getitem__(self, i):
        ids = torch.randint(0, 64, (8,))
        return {"input_ids": ids, "labels": ids}


# --- hf_run -------------------------------------------------------------------------------
shutil.rmtree("hf_run", ignore_errors=True)
vocab = {f"t{i}": i for i in range(64)}
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", bos_token="t1",
                                    eos_token="t2", pad_token="t3")
cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                  max_position_embeddings=32)
model = LlamaForCausalLM(cfg)
args = TrainingArguments(output_dir="hf_run", max_steps=4, save_steps=2,
                         per_device_train_batch_size=4, report_to=[], use_cpu=True,
                         logging_steps=1)
trainer = Trainer(model=model, args=args, train_dataset=D(), processing_class=tokenizer)
trainer.train()
# The final model, saved as transformers 4 did for large models: torch.save shards + index.
trainer.save_model("hf_run")  # config, generation config, tokenizer, training_args.bin, model
os.remove("hf_run/model.safetensors")
sd = {k: v.contiguous() for k, v in model.state_dict().items()}
names = list(sd)
half = len(names) // 2
shards = {"pytorch_model-00001-of-00002.bin": names[:half],
          "pytorch_model-00002-of-00002.bin": names[half:]}
weight_map, total = {}, 0
for fname, keys in shards.items():
    torch.save({k: sd[k] for k in keys}, os.path.join("hf_run", fname))
    for k in keys:
        weight_map[k] = fname
        total += sd[k].numel() * sd[k].element_size()
with open("hf_run/pytorch_model.bin.index.json", "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
with open("hf_run/README.md", "w") as f:
    f.write("# tiny-llama\n\nA two-layer Llama trained for four steps, for tests.\n")

roles = {}
for root, _, files in os.walk("hf_run"):
    for name in files:
        rel = os.path.relpath(os.path.join(root, name), "hf_run")
        if name.startswith("pytorch_model-"):
            role = "weights_shard"
        elif name.endswith(".index.json"):
            role = "weights_index"
        elif name == "model.safetensors":
            role = "weights"
        elif name == "optimizer.pt":
            role = "optimizer"
        elif name == "scheduler.pt":
            role = "scheduler"
        elif name.startswith("rng_state"):
            role = "rng_state"
        elif name == "training_args.bin":
            role = "training_args"
        elif name == "trainer_state.json":
            role = "trainer_state"
        elif name in ("config.json", "generation_config.json"):
            role = "config"
        elif name.startswith("tokenizer") or name in ("special_tokens_map.json", "chat_template.jinja"):
            role = "tokenizer"
        else:
            role = "other"
        roles[rel] = role
hf = {"roles": roles, "weights_only": {}, "timeline": ["checkpoint-2", "checkpoint-4"]}
for rel in sorted(roles):
    if rel.endswith((".bin", ".pt", ".pth")):
        hf["weights_only"][rel] = weights_only(os.path.join("hf_run", rel))
with open("hf_run.expected.json", "w") as f:
    json.dump(hf, f, indent=2, sort_keys=True)

# --- lightning_run ------------------------------------------------------------------------
shutil.rmtree("lightning_run", ignore_errors=True)
ck = "lightning_run/lightning_logs/version_0/checkpoints"
os.makedirs(ck)
with open("lightning_run/lightning_logs/version_0/hparams.yaml", "w") as f:
    f.write("hidden: 8\nlr: 0.01\n")
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
lroles, lwo = {}, {}
step = 0
for epoch in range(3):
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(3, 4)).sum().backward()
        opt.step()
        step += 1
    sched.step()
    state = {
        "epoch": epoch,
        "global_step": step,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {"model." + k: v.clone() for k, v in net.state_dict().items()},
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": epoch + 1}}}},
        "callbacks": {},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 8, "lr": 0.01},
    }
    name = f"epoch={epoch}-step={step}.ckpt"
    torch.save(state, os.path.join(ck, name))
    lroles[f"lightning_logs/version_0/checkpoints/{name}"] = "training_checkpoint"
torch.save(state, os.path.join(ck, "last.ckpt"))
lroles["lightning_logs/version_0/checkpoints/last.ckpt"] = "training_checkpoint"
lroles["lightning_logs/version_0/hparams.yaml"] = "config"
for rel in lroles:
    if rel.endswith(".ckpt"):
        lwo[rel] = weights_only(os.path.join("lightning_run", rel))
with open("lightning_run.expected.json", "w") as f:
    json.dump({"roles": lroles, "weights_only": lwo,
               "timeline": [f"lightning_logs/version_0/checkpoints/epoch={e}-step={2 * (e + 1)}.ckpt"
                            for e in range(3)]}, f, indent=2, sort_keys=True)
