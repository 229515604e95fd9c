"""Run inside benchmarks/.llmcompressor-venv (made by bench_llmcompressor.py): llmcompressor's one-shot
SparseGPT or Wanda on a save_pretrained folder, with the calibration windows sparsim used.

    python llmcompressor_prune.py MODEL_DIR CALIB.npy OUT_DIR sparsegpt|wanda PATTERN

PATTERN: "2:4" or "0:0" (unstructured 50 %). Writes the pruned model (uncompressed) to OUT_DIR.
"""
import sys

import numpy as np
import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
from transformers import AutoModelForCausalLM


def main():
    model_dir, calib_path, out_dir, method, structure = sys.argv[1:6]
    calib = np.load(calib_path)[:, :-1]
    ds = Dataset.from_dict({"input_ids": calib.tolist(), "attention_mask": np.ones_like(calib).tolist()})
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cls = SparseGPTModifier if method == "sparsegpt" else WandaPruningModifier
    kw = {"dampening_frac": 0.01, "block_size": 128} if method == "sparsegpt" else {}
    mod = cls(sparsity=0.5, mask_structure=structure, targets=["Linear"], ignore=["re:.*lm_head"], **kw)
    oneshot(model=model, dataset=ds, recipe=mod, num_calibration_samples=len(calib),
            max_seq_length=calib.shape[1])
    model.save_pretrained(out_dir, save_compressed=False)


if __name__ == "__main__":
    main()
