"""LLM pruning on code_lm: the trained model, one-shot pruners, and hardware-aware allocation at equal decode TPOT.

For each training seed (default 0, 1, 2) of ``code_lm`` (workloads/code_lm.py; trained on first use, then
cached in .sparsim-cache/):

1. the model: parameters, test perplexity, the unigram baseline, training time;
2. dense vs magnitude / Wanda / SparseGPT at 2:4 and at 50 % unstructured (test perplexity), and the
   time to prune every layer at 2:4 with Wanda and with SparseGPT;
3. at the decode-TPOT budget uniform 2:4 meets on a memory-bound preset (default vegeta-cpu-l2, batch
   1, prompt 512, 128 generated tokens): uniform 2:4 Wanda and SparseGPT, OWL (Wanda, outlier-weighted
   densities) and global magnitude at equal or lower TPOT (densest that fits, by bisection), and the
   hardware-aware allocation (SparseGPT; sensitivities on the calibration windows, perplexity in the
   loop on validation);
4. the lowest TPOT the hardware-aware allocation reaches with test perplexity at or below uniform 2:4
   SparseGPT's (budgets 0.94, 0.88, 0.82, 0.76 x uniform 2:4's TPOT);
5. with --llmcompressor: llmcompressor's SparseGPT at 2:4 on the same model and calibration windows,
   in its own venv (benchmarks/.llmcompressor-venv), masks and perplexity beside ours.

Tables print as Markdown with mean ± sd over the seeds. Slow (several minutes per seed on 2 cores, plus
training a seed the first time): not in run_all.py. Run:

    python benchmarks/bench_llm_prune.py [--seeds 0,1,2] [--accel vegeta-cpu-l2] [--llmcompressor]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ms(values, fmt="{:.2f}"):
    v = [x for x in values if x == x]
    if not v:
        return "-"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(statistics.mean(v))} ± {fmt.format(statistics.stdev(v))}"


def one_seed(seed: int, accel_name: str, calib_tokens: int, eval_tokens: int, ladder, log) -> dict:
    import accel
    from search.llm import allocate as al
    from search.llm.model import prune_model
    from search.llm.run import Session
    from workloads import code_lm

    out: dict = {"seed": seed}
    t0, c0 = time.perf_counter(), time.process_time()
    acc = accel.load(accel_name)
    s = Session("code_lm", "sparsegpt", acc, objective="tpot", batch=1, prompt=512, generate=128,
                calib_tokens=calib_tokens, eval_tokens=eval_tokens, seed=seed)
    s.load()
    meta = s.extra["code_lm"]
    out["model"] = {"parameters": meta["parameters"], "test_ppl": s.dense_ppl,
                    "meta_test_ppl": meta["test_perplexity"], "unigram_ppl": meta["unigram_test_perplexity"],
                    "train_s": meta["seconds"]["training"], "train_cpu_s": meta["seconds"].get("cpu_total_to_trained"),
                    "tokens": meta["tokens"], "files": meta["files"]}
    log(f"seed {seed}: dense test ppl {s.dense_ppl:.3f} (unigram {meta['unigram_test_perplexity']:.1f})")

    # 2. one-shot pruners, uniform
    pr = {}
    for pat in ("2:4", "unstructured:0.5"):
        for meth in ("magnitude", "wanda", "sparsegpt"):
            m = copy.deepcopy(s.model)
            t, c = time.perf_counter(), time.process_time()
            prune_model(m, pat, meth, s.calib)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            pr[(pat, meth)] = {"ppl": s.perplexity(m), "seconds": dt, "cpu_seconds": dc, "model": m}
            log(f"  {pat} {meth}: ppl {pr[(pat, meth)]['ppl']:.3f} ({dt:.1f} s wall, {dc:.1f} s CPU)")
    out["uniform"] = {f"{p}|{m}": {k: v[k] for k in ("ppl", "seconds", "cpu_seconds")} for (p, m), v in pr.items()}

    # 3. equal TPOT: the budget uniform 2:4 meets
    sims = {meth: s.sim(pr[("2:4", meth)]["model"]) for meth in ("wanda", "sparsegpt")}
    budget = sims["sparsegpt"]["tpot_s"]
    out["dense_sim"] = {k: s.dense_sim[k] for k in ("tpot_s", "energy_per_token_pj", "dram_bytes_per_token", "bound")}
    out["budget_tpot_s"] = budget
    rows = {"uniform 2:4 Wanda": {"ppl": pr[("2:4", "wanda")]["ppl"], "tpot_s": sims["wanda"]["tpot_s"]},
            "uniform 2:4 SparseGPT": {"ppl": pr[("2:4", "sparsegpt")]["ppl"], "tpot_s": budget}}
    # OWL: Wanda with outlier-weighted block densities, the densest mean density within the budget
    stats = al.collect(s.model, s.layers, s.calib, hessian=False)
    ratios = al.outlier_ratios(s.layers, stats)

    def owl(d):
        m = copy.deepcopy(s.model)
        prune_model(m, al.owl_patterns(s.layers, ratios, d), "wanda", s.calib)
        return m
    r = al.equal_budget(owl, s.sim, "tpot_s", budget)
    if r:
        rows["OWL (Wanda)"] = {"ppl": s.perplexity(r[1]), "tpot_s": r[2]["tpot_s"], "density": r[0]}

    def gmag(d):
        m = copy.deepcopy(s.model)
        from search.llm.model import prunable_layers
        al.global_magnitude(m, prunable_layers(m), d)
        return m
    r = al.equal_budget(gmag, s.sim, "tpot_s", budget)
    if r:
        rows["global magnitude"] = {"ppl": s.perplexity(r[1]), "tpot_s": r[2]["tpot_s"], "density": r[0]}
    t = time.perf_counter()
    best, pruned, cands = s.allocate(budget)
    rows["hardware-aware (SparseGPT)"] = {"ppl": s.perplexity(pruned), "tpot_s": best.simulated["tpot_s"],
                                          "patterns": s.costs.patterns(best.assignment),
                                          "val_ppl": best.validation_ppl,
                                          "candidates": [(c.budget_fraction, c.validation_ppl, c.within_budget)
                                                         for c in cands]}
    out["alloc_seconds"] = {"allocation_with_sensitivities": time.perf_counter() - t}
    out["equal_tpot"] = rows
    for k, v in rows.items():
        log(f"  {k}: ppl {v['ppl']:.3f}, TPOT {v['tpot_s'] * 1e6:.3f} us ({v['tpot_s'] / budget:.4f} x budget)")

    # 4. the lowest TPOT at or below uniform 2:4 SparseGPT's perplexity
    target = rows["uniform 2:4 SparseGPT"]["ppl"]
    reach = []
    for f in ladder:
        try:
            b, m, _ = s.allocate(budget * f, ladder=(1.0,))
        except Exception as e:     # below the cheapest assignment
            reach.append({"fraction": f, "error": str(e)})
            break
        p = s.perplexity(m)
        reach.append({"fraction": f, "ppl": p, "tpot_s": b.simulated["tpot_s"]})
        log(f"  budget {f:.2f} x: ppl {p:.3f}, TPOT {b.simulated['tpot_s'] * 1e6:.3f} us")
        if p > target:
            break
    ok = [x for x in reach if "ppl" in x and x["ppl"] <= target]
    out["reach"] = {"ladder": reach, "target_ppl": target,
                    "tpot_s": min(x["tpot_s"] for x in ok) if ok else None}
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0
    out["stages"] = s.stages.as_dict()
    out["load_average"] = list(os.getloadavg())
    return out


def tables(results, accel_name, calib_tokens, eval_tokens) -> str:
    L = []
    L.append(f"machine: {platform.machine()}, {platform.python_version()}; seeds "
             f"{', '.join(str(r['seed']) for r in results)}; calibration {calib_tokens} train tokens; "
             f"perplexity on {eval_tokens} test tokens (evenly spread windows of 128)\n")
    L.append("### code_lm (LLaMA-shaped: RMSNorm, SwiGLU, GQA 6/2 heads, 4 layers, width 192), test split\n")
    L.append("| parameters | test perplexity | unigram perplexity | training wall s | training CPU s |")
    L.append("| --- | --- | --- | --- | --- |")
    L.append(f"| {results[0]['model']['parameters']:,} | {ms([r['model']['test_ppl'] for r in results])} | "
             f"{ms([r['model']['unigram_ppl'] for r in results], '{:.1f}')} | "
             f"{ms([r['model']['train_s'] for r in results], '{:.0f}')} | "
             f"{ms([r['model']['train_cpu_s'] or float('nan') for r in results], '{:.0f}')} |")
    L.append("\n### One-shot pruning, every block Linear (lm_head dense): test perplexity\n")
    L.append("| pattern | dense | magnitude | Wanda | SparseGPT | SparseGPT <= Wanda <= magnitude |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for pat in ("2:4", "unstructured:0.5"):
        vals = {m: [r["uniform"][f"{pat}|{m}"]["ppl"] for r in results] for m in ("magnitude", "wanda", "sparsegpt")}
        holds = sum(1 for i in range(len(results))
                    if vals["sparsegpt"][i] <= vals["wanda"][i] <= vals["magnitude"][i])
        L.append(f"| {pat} | {ms([r['model']['test_ppl'] for r in results])} | {ms(vals['magnitude'])} | "
                 f"{ms(vals['wanda'])} | {ms(vals['sparsegpt'])} | {holds} of {len(results)} seeds |")
    L.append("\n| prune every layer at 2:4 (calibration and pruning, 1 torch thread) | Wanda s | SparseGPT s |")
    L.append("| --- | --- | --- |")
    L.append(f"| wall time | {ms([r['uniform']['2:4|wanda']['seconds'] for r in results])} | "
             f"{ms([r['uniform']['2:4|sparsegpt']['seconds'] for r in results])} |")
    L.append(f"| CPU time | {ms([r['uniform']['2:4|wanda'].get('cpu_seconds', float('nan')) for r in results])} | "
             f"{ms([r['uniform']['2:4|sparsegpt'].get('cpu_seconds', float('nan')) for r in results])} |")
    d = results[0]["dense_sim"]
    L.append(f"\n### Equal decode TPOT on {accel_name} (batch 1, prompt 512, 128 generated; dense "
             f"{d['tpot_s'] * 1e6:.2f} us/token, bound: {d['bound']}): budget = uniform 2:4's TPOT\n")
    L.append("| allocation | test perplexity | TPOT us | TPOT / budget | wins vs uniform 2:4 SparseGPT |")
    L.append("| --- | --- | --- | --- | --- |")
    names = list(results[0]["equal_tpot"])
    for n in names:
        ppl = [r["equal_tpot"][n]["ppl"] if n in r["equal_tpot"] else float("nan") for r in results]
        tp = [r["equal_tpot"][n]["tpot_s"] * 1e6 if n in r["equal_tpot"] else float("nan") for r in results]
        rel = [r["equal_tpot"][n]["tpot_s"] / r["budget_tpot_s"] if n in r["equal_tpot"] else float("nan")
               for r in results]
        wins = sum(1 for r in results if n in r["equal_tpot"]
                   and r["equal_tpot"][n]["ppl"] < r["equal_tpot"]["uniform 2:4 SparseGPT"]["ppl"])
        L.append(f"| {n} | {ms(ppl, '{:.3f}')} | {ms(tp)} | {ms(rel, '{:.4f}')} | {wins} of {len(results)} |")
    L.append("\n### Lowest TPOT of the hardware-aware allocation at or below uniform 2:4 SparseGPT's perplexity\n")
    L.append("The equal-TPOT allocation above counts as the ladder's 1.00 point; a ladder point that stops with "
             "an error is named with it.\n")
    L.append("| seed | uniform 2:4 TPOT us | its perplexity | hardware-aware TPOT us | TPOT ratio | "
             "ladder (fraction: ppl) |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        hw = r["equal_tpot"]["hardware-aware (SparseGPT)"]
        pts = [{"fraction": 1.0, "ppl": hw["ppl"], "tpot_s": hw["tpot_s"]}] + r["reach"]["ladder"]
        ok = [x["tpot_s"] for x in pts if "ppl" in x and x["ppl"] <= r["reach"]["target_ppl"]]
        t = min(ok) if ok else None
        lad = ", ".join(f"{x['fraction']:.2f}: {x['ppl']:.3f}" if "ppl" in x else f"{x['fraction']:.2f}: {x['error']}"
                        for x in pts)
        L.append(f"| {r['seed']} | {r['budget_tpot_s'] * 1e6:.3f} | {r['reach']['target_ppl']:.3f} | "
                 + (f"{t * 1e6:.3f} | {t / r['budget_tpot_s']:.4f}" if t else "- | -") + f" | {lad} |")
    L.append("\n### Hardware-aware allocations chosen (seed: layer patterns, block by block)\n")
    for r in results:
        pats = r["equal_tpot"]["hardware-aware (SparseGPT)"]["patterns"]
        short = "; ".join(f"{k.replace('model.layers.', 'L').replace('self_attn.', '').replace('mlp.', '')}={v}"
                          for k, v in pats.items())
        L.append(f"- seed {r['seed']}: {short}")
    L.append("\n### Where the time goes (each seed's Session: every allocation of the seed, summed; 1 torch thread)\n")
    stages = list(dict.fromkeys(k for r in results for k in r.get("stages", {})))
    L.append("| stage | " + " | ".join(f"seed {r['seed']} wall s / CPU s" for r in results) + " |")
    L.append("| --- |" + " --- |" * len(results))
    for k in stages:
        cells = [(f"{r['stages'][k]['wall_s']:.1f} / {r['stages'][k]['cpu_s']:.1f}" if k in r.get("stages", {})
                  else "-") for r in results]
        L.append(f"| {k} | " + " | ".join(cells) + " |")
    L.append("| whole seed (all of the above tables) | " + " | ".join(
        f"{r['seconds']:.0f} / {r.get('cpu_seconds', float('nan')):.0f}" for r in results) + " |")
    L.append("| load average (1, 5, 15 min) at the end | " + " | ".join(
        " / ".join(f"{x:.1f}" for x in r.get("load_average", [])) for r in results) + " |")
    return "\n".join(L)


def main(argv=None) -> int:
    import torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--accel", default="vegeta-cpu-l2")
    ap.add_argument("--calib-tokens", type=int, default=8192)
    ap.add_argument("--eval-tokens", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--from-json", help="comma-separated raw results (--json of earlier runs, one seed or more "
                                        "each): print the tables of all of them, measure nothing")
    ap.add_argument("--docs", action="store_true", help="write the tables to docs/benchmarks/generated/llm_prune.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ladder = (0.94, 0.88, 0.82, 0.76)
    results = []
    if args.from_json:
        for f in args.from_json.split(","):
            results += json.loads(Path(f).read_text())
        results.sort(key=lambda r: r["seed"])
    else:
        for seed in [int(x) for x in args.seeds.split(",")]:
            results.append(one_seed(seed, args.accel, args.calib_tokens, args.eval_tokens, ladder,
                                    lambda *a: print(*a, file=sys.stderr, flush=True)))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    md = tables(results, args.accel, args.calib_tokens, args.eval_tokens)
    print(md)
    if args.docs:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from docs_out import DocsOut
        out = DocsOut("llm_prune", f"python benchmarks/bench_llm_prune.py --seeds "
                                   f"{','.join(str(r['seed']) for r in results)} --calib-tokens {args.calib_tokens} "
                                   f"--eval-tokens {args.eval_tokens}")
        out.text(md)
        out.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
