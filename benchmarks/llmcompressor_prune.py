"""Run inside benchmarks/.llmcompressor-venv (made by bench_llmcompressor.py): llmcompressor's one-shot
SparseGPT or Wanda on a save_pretrained folder, with the calibration windows sparsim used, or a recipe
file (such as the recipe.yaml `sparsim prune --out` writes) loaded by llmcompressor itself.

    python llmcompressor_prune.py MODEL_DIR CALIB.npy OUT_DIR sparsegpt|wanda PATTERN
    python llmcompressor_prune.py MODEL_DIR CALIB.npy OUT_DIR recipe RECIPE.yaml

PATTERN: "2:4" or "0:0" (unstructured 50 %). Writes the pruned model (uncompressed) to OUT_DIR. With a
recipe, it first prints one line per modifier llmcompressor parsed from it (``parsed: ...``).
"""
import sys

import numpy as np
import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
from llmcompressor.recipe import Recipe
from transformers import AutoModelForCausalLM


def main():
    model_dir, calib_path, out_dir, method, arg = sys.argv[1:6]
    calib = np.load(calib_path)[:, :-1]
    ds = Dataset.from_dict({"input_ids": calib.tolist(), "attention_mask": np.ones_like(calib).tolist()})
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if method == "recipe":
        recipe = Recipe.create_instance(arg)
        for m in recipe.modifiers:
            d = m.model_dump()
            groups = {g: (c["targets"], c["weights"]["num_bits"]) for g, c in (d.get("config_groups") or {}).items()}
            print(f"parsed: {type(m).__name__} group={d.get('group')} sparsity={d.get('sparsity')} "
                  f"mask_structure={d.get('mask_structure')} targets={d.get('targets')} config_groups={groups}",
                  flush=True)
        recipe = arg                   # oneshot reads the file itself
    else:
        cls = SparseGPTModifier if method == "sparsegpt" else WandaPruningModifier
        kw = {"dampening_frac": 0.01, "block_size": 128} if method == "sparsegpt" else {}
        recipe = cls(sparsity=0.5, mask_structure=arg, targets=["Linear"], ignore=["re:.*lm_head"], **kw)
    oneshot(model=model, dataset=ds, recipe=recipe, num_calibration_samples=len(calib),
            max_seq_length=calib.shape[1])
    if method == "recipe":
        # the Linear weights as the model computes with them (quantized layers: dequantized through
        # their scales), so a venv without compressed-tensors can load them into the dense model
        from compressed_tensors.quantization.lifecycle.forward import fake_quantize
        from safetensors.torch import save_file
        import os
        os.makedirs(out_dir, exist_ok=True)
        weights = {}
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                w = mod.weight.detach()
                scheme = getattr(mod, "quantization_scheme", None)
                if scheme is not None and scheme.weights is not None and hasattr(mod, "weight_scale"):
                    w = fake_quantize(w, mod.weight_scale, getattr(mod, "weight_zero_point", None), scheme.weights)
                weights[f"{name}.weight"] = w.float().contiguous()
        save_file(weights, os.path.join(out_dir, "linear_weights.safetensors"))
        return
    model.save_pretrained(out_dir, save_compressed=False)


if __name__ == "__main__":
    main()
