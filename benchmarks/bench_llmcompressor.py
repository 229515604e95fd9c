"""sparsim's SparseGPT and Wanda against llmcompressor's on code_lm (training seed 0), same calibration windows.

Makes benchmarks/.llmcompressor-venv (git-ignored) the first time: llmcompressor 0.14.0.1 from pip with
the CPU torch wheel this machine has (otherwise pip pulls a CUDA torch of several GB). Runs
benchmarks/llmcompressor_prune.py there on the cached code_lm folder, then loads each result here and
prints a Markdown table: test perplexity of both, and the share of weights where the two masks agree.

    python benchmarks/bench_llmcompressor.py [--calib-tokens 4096] [--eval-tokens 16384]
"""
from __future__ import annotations

import argparse
import copy
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
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from search.llm.model import prunable_layers, prune_model
    from workloads import code_lm
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calib-tokens", type=int, default=4096)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    args = ap.parse_args(argv)
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
    print(f"code_lm seed 0, dense test perplexity {code_lm.perplexity(lm.model, test):.3f}; calibration "
          f"{calib[:, :-1].size} train tokens, test {test[:, 1:].size} tokens; llmcompressor {VERSION}\n")
    print("| method | pattern | sparsim test ppl | llmcompressor test ppl | masks agree | llmcompressor s | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m, p, a, b, ag, t, note in rows:
        f = (lambda x: "-" if x is None else f"{x:.3f}")
        print(f"| {m} | {p} | {f(a)} | {f(b)} | {'-' if ag is None else f'{ag * 100:.2f} %'} | {t:.0f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
