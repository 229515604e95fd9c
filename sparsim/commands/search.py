"""``sparsim search``: choose per-layer sparsity against simulated cycles and energy."""
from __future__ import annotations


def register(sub) -> None:
    from search.candidates import DEFAULT_CANDIDATES
    sp = sub.add_parser("search", help="choose per-layer sparsity (and hardware) against simulated cost",
                        description="Per-layer sparsity search over simulator cost tables: the exact choice "
                                    "within a budget (latency, energy) or a Pareto front (pareto).")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo model name or path/to/file.py:build_fn (hf:NAME or hf:/path for "
                                     "the LLM objectives tpot, token-energy)")
    src.add_argument("--workload", help="a saved workload (.json) or SCALE-Sim topology (.csv); magnitude proxy only")
    sp.add_argument("--accel", required=True, help="preset name, .yaml or SCALE-Sim .cfg")
    sp.add_argument("--objective", choices=["latency", "energy", "pareto", "tpot", "token-energy"], default=None,
                    help="latency / energy: best proxy within --budget; pareto: front over proxy, cycles, energy "
                         "(default); for hf: LLMs tpot / token-energy: decode time or energy per output token "
                         "(docs/llm-inference.md)")
    sp.add_argument("--budget", type=float, help="fraction of the dense model's cycles (latency) or energy "
                                                 "(energy) on the same accelerator (default 0.6)")
    sp.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES),
                    help=f"comma-separated patterns every layer may take (default {','.join(DEFAULT_CANDIDATES)}), "
                         f"e.g. dense,2:4,1:4,2:8,unstructured:0.3,block:4x4:0.5,channel:0.75")
    sp.add_argument("--pin", default="", help="comma-separated layer globs kept dense, e.g. conv1,fc")
    sp.add_argument("--proxy", choices=["magnitude", "wanda", "reconstruction"], default="magnitude",
                    help="accuracy proxy (wanda and reconstruction run the model once on its example inputs)")
    sp.add_argument("--mask-score", choices=["magnitude", "wanda"], default="magnitude",
                    help="how masks are chosen inside a pattern")
    sp.add_argument("--evals", type=int, default=5000, help="evaluations of the Pareto search (default 5000)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the search (weights stay seed 0)")
    sp.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    sp.add_argument("--out", help="write the front (or the chosen point) as .csv or .parquet")
    sp.add_argument("--masks", help="write the chosen point's masks ({parameter name: bool tensor}, torch.save)")
    sp.add_argument("--plot", help="write a PNG of the front against the baselines")
    sp.add_argument("--joint", nargs="+", metavar="AXIS=V1,V2",
                    help="also choose hardware: rows=16,32,64 cols=... dataflow=ws,os modes=2:4,1:4+2:4 "
                         "dram_gbps=8,16 buffer_scale=0.5,1 <memory name>=<bytes>,...")
    sp.add_argument("--rows", type=int, default=12, help="rows of the front to print (default 12)")
    sp.add_argument("--prompt", type=int, default=512, help="LLM objectives: prompt tokens (default 512)")
    sp.add_argument("--generate", type=int, default=128, help="LLM objectives: decode steps (default 128)")
    sp.set_defaults(func=cmd_search)


def errors() -> list:
    from search.errors import SearchError
    return [SearchError]


def shown_rows(n: int, rows: int, chosen: int) -> list[int]:
    """At most ``rows`` positions out of ``n``, spread evenly from the first to the last, one of them
    ``chosen`` (it replaces the nearest)."""
    if n <= rows:
        return list(range(n))
    picks = sorted({round(i * (n - 1) / (rows - 1)) for i in range(rows)}) if rows > 1 else [chosen]
    if chosen not in picks:
        picks[min(range(len(picks)), key=lambda j: abs(picks[j] - chosen))] = chosen
    return sorted(set(picks))


def _fmt(v) -> str:
    return f"{int(v):,}"


def cmd_search(args) -> int:
    import sys
    from search import SearchError
    if (args.model or "").startswith("hf:") or args.objective in ("tpot", "token-energy"):
        from sparsim.commands.llm import cmd_llm_search
        return cmd_llm_search(args)                 # decode TPOT / energy per token of an LLM
    if args.objective is None:
        args.objective = "pareto"
    from sparsim.api import accelerator, load_workload, search
    from sparsim._io import check_writable, writing
    from sparsim.cli import _table
    for flag, path, exts in (("--out", args.out, (".csv", ".parquet")), ("--masks", args.masks, (".pt", ".pth")),
                             ("--plot", args.plot, (".png",))):
        check_writable(path, flag, exts)
    if args.evals < 1:
        raise SearchError(f"--evals {args.evals}: expected a positive integer")
    if args.rows < 1:
        raise SearchError(f"--rows {args.rows}: expected a positive integer")
    acc = accelerator(args.accel)
    spec = args.model if args.model else load_workload(args.workload)
    res = search(spec, acc, objective=args.objective, budget=args.budget, candidates=args.candidates,
                 pins=args.pin, proxy=args.proxy, mask_score=args.mask_score, evals=args.evals, seed=args.seed,
                 joint=args.joint, batch=args.batch, progress=sys.stderr.isatty())
    info = res.info
    d = info["dense"]
    header = ["point", "proxy", "cycles", "speed-up", "energy_uJ", "energy x", "DRAM_MiB"] + res.hardware_axes
    rows = []
    for _, b in res.baselines.iterrows():
        rows.append([b["name"], f"{b['proxy']:.4f}", _fmt(b["cycles"]), f"{d['cycles'] / b['cycles']:.2f}x",
                     f"{b['energy_pj'] / 1e6:.1f}", f"{b['energy_pj'] / d['energy_pj']:.3f}",
                     f"{b['dram_bytes'] / 2**20:.2f}"] + ["(given)"] * len(res.hardware_axes))
    front = res.front
    chosen = res._index(None)
    show = front.iloc[shown_rows(len(front), args.rows, chosen)]
    for i, r in show.iterrows():
        name = ("chosen" if res.objective != "pareto" else "front") + (" *" if i == chosen else f" {i}")
        rows.append([name, f"{r['proxy']:.4f}", _fmt(r["cycles"]), f"{d['cycles'] / r['cycles']:.2f}x",
                     f"{r['energy_pj'] / 1e6:.1f}", f"{r['energy_pj'] / d['energy_pj']:.3f}",
                     f"{r['dram_bytes'] / 2**20:.2f}"] + [str(r[a]) for a in res.hardware_axes])
    print("\n".join(_table(header, rows, set(header) - {"point"} - set(res.hardware_axes))))
    t = info["seconds"]
    print(f"\n{info['model']} on {info['accelerator']}: {len(res.costs)} hardware point(s), candidates "
          f"{','.join(info['candidates'])}, proxy {res.proxy}; speed-up and energy x are against dense on "
          f"{info['accelerator']}")
    if res.objective == "pareto":
        print(f"front: {len(front)} points from {info['evals']} evaluations ({info['algorithm']}, "
              f"seed {info['seed']}) and {info.get('exact_points', 0)} exact points, "
              f"hypervolume {info['hypervolume']:.4f}; random search with as many: {info['random_hypervolume']:.4f}")
    else:
        from search.knapsack import TIME_LIMIT
        proof = "" if info.get("exact_optimal", True) else (
            f" (not proven optimal: HiGHS stopped after {TIME_LIMIT:g} s, at most {info['exact_gap']:.2%} below "
            f"the optimum)")
        greedy = info["greedy_proxy"]
        greedy = f"{greedy:.4f}" if greedy == greedy else "- (not for coupled channel costs)"
        print(f"budget {res.budget:g} x dense {info['metric']}: exact proxy {front['proxy'].iloc[0]:.4f}{proof}, "
              f"greedy {greedy}")
    if "channel_coupling" in info:
        print(f"channel candidates: {info['channel_coupling']}")
    if res.infeasible is not None:
        for _, r in res.infeasible.iterrows():
            print("infeasible: " + ", ".join(f"{a}={r[a]}" for a in res.hardware_axes) + f": {r['reason']}")
    print(f"time: tables {t['tables']:.1f} s, proxy {t['proxy']:.1f} s, search {t['search']:.1f} s, "
          f"baselines {t['baselines']:.1f} s, total {t['total']:.1f} s")
    c = front.loc[chosen]
    print("* chosen: " + ", ".join(f"{k[6:]}={v}" for k, v in c.items() if str(k).startswith("layer:") and v != "-"))
    for flag, path, save in (("--out", args.out, res.save), ("--masks", args.masks, res.save_masks),
                             ("--plot", args.plot, res.plot)):
        if path:
            with writing(path, flag):
                save(path)
            print(f"wrote {path}")
    return 0
