#!/usr/bin/env python3
"""A real Hugging Face Trainer output folder, written by transformers itself: a tiny Llama
(tied embeddings) trained for two steps on CPU, its `checkpoint-2/` (model.safetensors,
optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin, trainer_state.json, configs), and
the model's state dict saved as a classic flat `pytorch_model.bin`.

    cd tests/fixtures/real/hf_trainer && python ../../../gen/hf_trainer.py
"""
import torch, os
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
from torch.utils.data import Dataset
class D(Dataset):
    def __len__(self): return 8
    def __getitem__(self, i):
        ids = torch.randint(0, 64, (8,))
        return {"input_ids": ids, "labels": ids}
cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=32)
torch.manual_seed(0)
m = LlamaForCausalLM(cfg)
args = TrainingArguments(output_dir="run", max_steps=2, save_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True, logging_steps=1)
Trainer(model=m, args=args, train_dataset=D()).train()
trained = LlamaForCausalLM.from_pretrained("run/checkpoint-2")
torch.save(trained.state_dict(), "pytorch_model.bin")
os.replace("run/checkpoint-2", "checkpoint-2")
os.rmdir("run")
