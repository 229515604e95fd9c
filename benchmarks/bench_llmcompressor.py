"""sparsim's SparseGPT and Wanda against llmcompressor's on code_lm (training seed 0), same calibration windows.

Makes benchmarks/.llmcompressor-venv (git-ignored) the first time: llmcompressor 0.14.0.1 from pip with
the CPU torch wheel this machine has (otherwise pip pulls a CUDA torch of several GB). Runs
benchmarks/llmcompressor_prune.py there on the cached code_lm folder, then loads each result here and
prints a Markdown table: test perplexity of both, and the share of weights where the two masks agree.

With --recipe FOLDER (a folder `sparsim prune --model code_lm --out FOLDER` wrote), llmcompressor loads
FOLDER/recipe.yaml itself (``Recipe.create_instance`` and ``oneshot(recipe=path)``) and applies it to
the dense model: the table gives, per layer, the pattern sparsim chose, the sparsity sparsim's folder
has and the sparsity llmcompressor's run produced, and the masks' agreement.

    python benchmarks/bench_llmcompressor.py [--calib-tokens 4096] [--eval-tokens 16384] [--recipe FOLDER]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import os  # noqa: E402

#: the venv; LLMCOMPRESSOR_VENV names another one already made the same way
VENV = Path(os.environ.get("LLMCOMPRESSOR_VENV", ROOT / "benchmarks" / ".llmcompressor-venv"))
VERSION = "0.14.0.1"
#: what the script printed, for --docs
LINES: list[str] = []


def say(text: str = "") -> None:
    LINES.append(text)
    print(text, flush=True)


def venv_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        torch_wheel = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))
        pins = [str(torch_wheel[0])] if torch_wheel else ["torch==2.13.0", "--extra-index-url",
                                                          "https://download.pytorch.org/whl/cpu"]
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *pins, f"llmcompressor=={VERSION}"], check=True)
    return py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calib-tokens", type=int, default=4096)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--recipe", help="a folder sparsim prune --out wrote: apply its recipe.yaml with llmcompressor")
    ap.add_argument("--skip-methods", action="store_true", help="only the --recipe part")
    ap.add_argument("--docs", action="store_true", help="write docs/benchmarks/generated/llmcompressor.md")
    args = ap.parse_args(argv)
    if args.recipe:
        recipe_part(Path(args.recipe), args.calib_tokens)
    if not args.skip_methods:
        methods_part(args)
    if args.docs:
        from docs_out import DocsOut
        cmd = "python benchmarks/bench_llmcompressor.py" + (f" --recipe {Path(args.recipe).name}" if args.recipe else "") \
            + (" --skip-methods" if args.skip_methods else "")
        out = DocsOut("llmcompressor", cmd)
        out.text("\n".join(LINES))
        out.write()
    return 0


def methods_part(args) -> None:
    import copy

    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from search.llm.model import prunable_layers, prune_model
    from workloads import code_lm
    lm = code_lm.load(code_lm.DEFAULT)
    calib = lm.windows("train", args.calib_tokens)
    test = lm.windows("test", args.eval_tokens)
    py = venv_python()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "calib.npy", calib)
        for method in ("sparsegpt", "wanda"):
            for pattern, structure in (("2:4", "2:4"), ("unstructured:0.5", "0:0")):
                out = Path(tmp) / f"{method}-{structure.replace(':', '_')}"
                t = time.perf_counter()
                r = subprocess.run([str(py), str(ROOT / "benchmarks" / "llmcompressor_prune.py"), str(lm.folder),
                                    str(Path(tmp) / "calib.npy"), str(out), method, structure],
                                   capture_output=True, text=True)
                t_lc = time.perf_counter() - t
                if r.returncode:
                    rows.append((method, pattern, None, None, None, t_lc, r.stderr.strip().splitlines()[-1][:200]))
                    continue
                theirs = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
                ours = copy.deepcopy(lm.model)
                t = time.perf_counter()
                prune_model(ours, pattern, method, calib)
                t_ours = time.perf_counter() - t
                agree = total = 0
                for a, b in zip(prunable_layers(ours), prunable_layers(theirs)):
                    ma, mb = a.weight_oi() != 0, b.weight_oi() != 0
                    agree += int((ma == mb).sum())
                    total += ma.numel()
                rows.append((method, pattern, code_lm.perplexity(ours, test), code_lm.perplexity(theirs, test),
                             agree / total, t_lc, f"ours {t_ours:.1f} s"))
    say(f"code_lm seed 0, dense test perplexity {code_lm.perplexity(lm.model, test):.3f}; calibration "
          f"{calib[:, :-1].size} train tokens, test {test[:, 1:].size} tokens; llmcompressor {VERSION}\n")
    say("| method | pattern | sparsim test ppl | llmcompressor test ppl | masks agree | llmcompressor s | note |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
    for m, p, a, b, ag, t, note in rows:
        f = (lambda x: "-" if x is None else f"{x:.3f}")
        say(f"| {m} | {p} | {f(a)} | {f(b)} | {'-' if ag is None else f'{ag * 100:.2f} %'} | {t:.0f} | {note} |")


def recipe_part(folder: Path, calib_tokens: int) -> None:
    """llmcompressor applies the recipe sparsim wrote; per-layer sparsity of both, masks' agreement."""
    import copy
    import json

    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from search.llm.model import prunable_layers
    from workloads import code_lm
    report = json.loads((folder / "sparsim_report.json").read_text())
    lm = code_lm.load(code_lm.DEFAULT.replace(seed=report["seed"]))
    calib = lm.windows("train", calib_tokens)
    py = venv_python()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "calib.npy", calib)
        out = Path(tmp) / "recipe-out"
        t = time.perf_counter()
        r = subprocess.run([str(py), str(ROOT / "benchmarks" / "llmcompressor_prune.py"), str(lm.folder),
                            str(Path(tmp) / "calib.npy"), str(out), "recipe", str(folder / "recipe.yaml")],
                           capture_output=True, text=True)
        took = time.perf_counter() - t
        parsed = [l[len("parsed: "):] for l in r.stdout.splitlines() if l.startswith("parsed: ")]
        say(f"\n### llmcompressor {VERSION} loads and applies {folder.name}/recipe.yaml ({took:.0f} s)\n")
        if r.returncode:
            say(f"llmcompressor failed: {r.stderr.strip().splitlines()[-1][:300]}")
            return
        say("Modifiers llmcompressor parsed from the recipe:\n")
        for p in parsed:
            say(f"- `{p}`")
        from safetensors.torch import load_file
        theirs = copy.deepcopy(lm.model)          # the dense model with llmcompressor's Linear weights
        got = load_file(str(out / "linear_weights.safetensors"))
        with torch.no_grad():
            for name, mod in theirs.named_modules():
                if f"{name}.weight" in got and isinstance(mod, torch.nn.Linear):
                    mod.weight.copy_(got[f"{name}.weight"])
        ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        say("\n| layer | sparsim pattern | sparsim zeros | llmcompressor zeros | zero masks agree |")
        say("| --- | --- | --- | --- | --- |")
        agree = total = 0
        for a, b in zip(prunable_layers(ours), prunable_layers(theirs)):
            ma, mb = a.weight_oi() != 0, b.weight_oi() != 0
            agree += int((ma == mb).sum())
            total += ma.numel()
            say(f"| {a.name} | {report['patterns'][a.name]} | {1 - float(ma.float().mean()):.4f} | "
                  f"{1 - float(mb.float().mean()):.4f} | {float((ma == mb).float().mean()) * 100:.2f} % |")
        test = lm.windows("test", report["eval_tokens"])
        say(f"\nAll layers: masks agree on {agree / total * 100:.2f} % of weights; test perplexity sparsim "
              f"{report['pruned']['test_perplexity']:.3f}, llmcompressor's run of the recipe "
              f"{code_lm.perplexity(theirs, test):.3f} (dense {report['dense']['test_perplexity']:.3f}).")


if __name__ == "__main__":
    sys.exit(main())
