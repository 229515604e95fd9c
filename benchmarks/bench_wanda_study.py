"""Why Wanda is not better than magnitude on code_lm: the measurements behind the answer.

The Wanda paper's ordering (Wanda's perplexity <= magnitude's) comes from LLMs with a few input
features whose activations are orders of magnitude larger than the rest ("emergent outlier
features"); Wanda's score |W_ij| * ||X_j|| keeps the weights those features multiply. On code_lm
(2.4 M parameters, 300 training steps) this script measures, per training seed:

1. the spread of the input-feature norms ||X_j|| each pruned layer sees (max / median and the
   coefficient of variation, over the calibration tokens), and how many of the 2:4 mask entries
   Wanda and magnitude choose differently;
2. each layer's output reconstruction error on held-out (validation) tokens, ||X (W - W')^T||^2 /
   ||X W^T||^2, when that layer alone is pruned by Wanda or by magnitude (the quantity Wanda's score
   approximates: per output row, the error of removing w_ij is w_ij^2 ||X_j||^2 when inputs are
   uncorrelated);
3. test perplexity of magnitude and Wanda at 2:4 and 50 % unstructured as the calibration changes
   within the paper's method: 1,024 to 65,536 calibration tokens, train or validation split as the
   calibration source, and the comparison group for unstructured (per output row, the paper's
   choice, or the whole layer); magnitude's comparison group both ways too;
4. the same on the validation split (which split is evaluated).

    python benchmarks/bench_wanda_study.py [--seeds 0] [--eval-tokens 32768] [--docs]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prune_with(model, layers_fn, pattern, how, calib):
    """Prune every layer of ``model`` (a copy) sequentially with ``how`` in magnitude, wanda, wanda-layer,
    magnitude-row."""
    import torch
    from search.llm import pruners as pr
    from search.llm.model import prune_model
    from workloads import parse_pattern
    m = copy.deepcopy(model)
    if how in ("magnitude", "wanda"):
        prune_model(m, pattern, how, calib)
        return m
    p = parse_pattern(pattern)
    if how == "magnitude-row":
        for l in layers_fn(m):
            w, _ = pr.magnitude(l.weight_oi().float(), p, per_row=True)
            l.set_weight_oi(w)
        return m
    # wanda-layer: Wanda's score compared over the whole layer, sequential like prune_model
    from search.llm.model import BlockRunner, blocks
    layers = layers_fn(m)
    runner = BlockRunner(m, calib)
    done = 0
    for blk in blocks(layers):
        i = runner.index[blk[0].block]
        while done < i:
            runner.advance(done)
            done += 1
        stats = runner.stats(i, blk, hessian=False)
        for l in blk:
            w, _ = pr.wanda(l.weight_oi().float(), p, stats[l.name].sq_norm, per_row=False)
            l.set_weight_oi(w.to(torch.float32))
    return m


def one_seed(seed: int, eval_tokens: int, log) -> dict:
    import numpy as np
    import torch
    from search.llm import pruners as pr
    from search.llm.model import collect, prunable_layers
    from workloads import code_lm, parse_pattern
    lm = code_lm.load(code_lm.DEFAULT.replace(seed=seed))
    test, val = lm.windows("test", eval_tokens), lm.windows("validation", eval_tokens)
    out = {"seed": seed, "dense": {"test": code_lm.perplexity(lm.model, test),
                                   "validation": code_lm.perplexity(lm.model, val)}}
    layers = prunable_layers(lm.model)
    # 1. input norms and mask differences (dense model statistics, 8,192 train tokens)
    calib = lm.windows("train", 8192)
    stats = collect(lm.model, layers, calib, hessian=False)
    held = collect(lm.model, layers, lm.windows("validation", 8192), hessian=True)
    rows = []
    for l in layers:
        nrm = torch.sqrt(stats[l.name].sq_norm)
        W = l.weight_oi().float()
        _, mm = pr.magnitude(W, parse_pattern("2:4"))
        _, mw = pr.wanda(W, parse_pattern("2:4"), stats[l.name].sq_norm)
        H = held[l.name].xtx.float()

        def rel_err(Wp):
            D = (W - Wp).double()
            return float(torch.einsum("oi,ij,oj->", D, H.double(), D) / torch.einsum("oi,ij,oj->", W.double(),
                                                                                      H.double(), W.double()))
        errs = {}
        for pat in ("2:4", "unstructured:0.5"):
            p = parse_pattern(pat)
            errs[pat] = (rel_err(pr.magnitude(W, p)[0]), rel_err(pr.wanda(W, p, stats[l.name].sq_norm)[0]))
        rows.append({"layer": l.name, "max_over_median": float(nrm.max() / nrm.median()),
                     "cv": float(nrm.std() / nrm.mean()), "mask_differs": float((mm != mw).float().mean()),
                     "err": errs})
    out["layers"] = rows
    log(f"seed {seed}: norms and errors done")
    # 3. calibration settings
    res = {}
    for pat in ("2:4", "unstructured:0.5"):
        for how in ("magnitude", "magnitude-row") if pat != "2:4" else ("magnitude",):
            m = prune_with(lm.model, prunable_layers, pat, how, None)
            res[(pat, how, "-", 0)] = (code_lm.perplexity(m, test), code_lm.perplexity(m, val))
        for src in ("train", "validation"):
            for n in ((1024, 4096, 16384, 65536) if src == "train" else (4096, 16384)):
                c = lm.windows(src, n)
                for how in ("wanda", "wanda-layer") if pat != "2:4" else ("wanda",):
                    t = time.perf_counter()
                    m = prune_with(lm.model, prunable_layers, pat, how, c)
                    res[(pat, how, src, n)] = (code_lm.perplexity(m, test), code_lm.perplexity(m, val))
                    log(f"  {pat} {how} {src} {n}: test {res[(pat, how, src, n)][0]:.3f} "
                        f"({time.perf_counter() - t:.1f} s)")
    out["ppl"] = {"|".join(map(str, k)): v for k, v in res.items()}
    return out


def tables(results, eval_tokens) -> str:
    import statistics
    L = [f"code_lm, seeds {', '.join(str(r['seed']) for r in results)}; perplexity on {eval_tokens} tokens of the "
         f"test and validation splits; statistics of the dense model.\n"]
    L.append("### Input-feature norms ||X_j|| each layer sees (8,192 train tokens) and 2:4 mask differences\n")
    L.append("| layer (seed " + str(results[0]["seed"]) + ") | max / median | coefficient of variation | "
             "2:4 entries Wanda and magnitude choose differently | held-out output error 2:4 magnitude / Wanda | "
             "50 % magnitude / Wanda |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    r0 = results[0]
    for x in r0["layers"]:
        e, u = x["err"]["2:4"], x["err"]["unstructured:0.5"]
        L.append(f"| {x['layer'].replace('model.layers.', 'L')} | {x['max_over_median']:.1f} | {x['cv']:.2f} | "
                 f"{x['mask_differs'] * 100:.1f} % | {e[0]:.4f} / {e[1]:.4f} | {u[0]:.4f} / {u[1]:.4f} |")
    for r in results:
        n = len(r["layers"])
        w24 = sum(1 for x in r["layers"] if x["err"]["2:4"][1] < x["err"]["2:4"][0])
        w50 = sum(1 for x in r["layers"] if x["err"]["unstructured:0.5"][1] < x["err"]["unstructured:0.5"][0])
        L.append(f"\nSeed {r['seed']}: Wanda's held-out output error is lower than magnitude's in {w24} of {n} "
                 f"layers at 2:4 and {w50} of {n} at 50 %; max / median norm over layers: median "
                 f"{statistics.median(x['max_over_median'] for x in r['layers']):.1f}, largest "
                 f"{max(x['max_over_median'] for x in r['layers']):.1f}.")
    L.append("\n### Test (validation) perplexity as the calibration changes\n")
    L.append("| pattern | method | calibration | " + " | ".join(f"seed {r['seed']}" for r in results) + " |")
    L.append("| --- | --- | --- |" + " --- |" * len(results))
    for key in results[0]["ppl"]:
        pat, how, src, n = key.split("|")
        cal = "-" if src == "-" else f"{int(n):,} {src} tokens"
        name = {"magnitude": "magnitude (per layer)", "magnitude-row": "magnitude (per output row)",
                "wanda": "Wanda (per output row)" if pat != "2:4" else "Wanda",
                "wanda-layer": "Wanda (per layer)"}[how]
        cells = [f"{r['ppl'][key][0]:.3f} ({r['ppl'][key][1]:.3f})" for r in results]
        L.append(f"| {pat} | {name} | {cal} | " + " | ".join(cells) + " |")
    L.append("| dense | - | - | " + " | ".join(f"{r['dense']['test']:.3f} ({r['dense']['validation']:.3f})"
                                               for r in results) + " |")
    return "\n".join(L)


def main(argv=None) -> int:
    import json

    import torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--eval-tokens", type=int, default=32768)
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--from-json", help="comma-separated raw results of earlier runs: print their tables only")
    ap.add_argument("--docs", action="store_true", help="write docs/benchmarks/generated/wanda_study.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.from_json:
        results = sorted((r for f in args.from_json.split(",") for r in json.loads(Path(f).read_text())),
                         key=lambda r: r["seed"])
        args.seeds = ",".join(str(r["seed"]) for r in results)
    else:
        results = [one_seed(int(s), args.eval_tokens, lambda *a: print(*a, file=sys.stderr, flush=True))
                   for s in args.seeds.split(",")]
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    md = tables(results, args.eval_tokens)
    print(md)
    if args.docs:
        from docs_out import DocsOut      # this script's folder is on sys.path
        doc = DocsOut("wanda_study", f"python benchmarks/bench_wanda_study.py --seeds {args.seeds} --docs")
        doc.text(md)
        doc.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
