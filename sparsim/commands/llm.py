"""``sparsim llm``: an LLM's prefill and decode on an accelerator, one row per batch."""
from __future__ import annotations

COLUMNS = ["batch", "TTFT_ms", "TPOT_ms", "TPOT_last_ms", "tokens/s", "energy/token_mJ", "DRAM/token_MB", "bound"]


def register(subparsers) -> None:
    sp = subparsers.add_parser(
        "llm", help="LLM inference: time to first token, time per output token, energy and DRAM bytes per token",
        description="Build an LLM from its transformers config (hf:NAME or hf:/path; seeded weights, nothing "
                    "downloaded), trace --blocks of its identical blocks and scale them, and cost a prefill of "
                    "--prompt tokens and --generate decode steps per batch: TTFT, TPOT (mean and at the last "
                    "token), decode tokens/s, energy and DRAM bytes per output token, and what bounds decode "
                    "(compute, weights or KV).")
    sp.add_argument("--model", required=True, help="hf:NAME (llama-3.2-1b, qwen3-0.6b, mistral-7b, gpt2, "
                                                   "qwen1.5-moe-a2.7b, mixtral-8x7b) or hf:/path/to/model_or_config.json")
    sp.add_argument("--accel", required=True, help="preset name or accelerator YAML")
    sp.add_argument("--prompt", type=int, default=512, help="prompt tokens per sequence (default 512)")
    sp.add_argument("--generate", type=int, default=128, help="generated tokens = decode steps (default 128)")
    sp.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    sp.add_argument("--sparsity", default=None, help="weight pattern of the blocks' linear layers: dense, N:M, "
                                                     "unstructured:D (the LM head stays dense)")
    sp.add_argument("--weight-bits", type=int, default=None, help="weight storage bits: 16, 8 or 4 (8 and 4 with "
                                                                  "one 16-bit scale per --group-size values)")
    sp.add_argument("--group-size", type=int, default=128, help="values per weight scale (default 128)")
    sp.add_argument("--kv-bits", type=int, default=16, help="KV-cache bits: 16, 8 or 4 (default 16)")
    sp.add_argument("--act-sparsity", type=float, default=None,
                    help="TEAL-style activation density in (0, 1]: per-layer thresholds calibrated on the traced "
                         "tokens; used by accelerators with compute.activation_sparsity skip or gate")
    sp.add_argument("--moe-routing", default=None, help="real (the router on the traced tokens; default), uniform, "
                                                        "zipf:S, or a file of per-expert token counts")
    sp.add_argument("--blocks", type=int, default=1, help="decoder blocks to build and trace (default 1; the "
                                                         "rest are scaled from them)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the model's random weights and traced tokens "
                                                          "(default 0)")
    sp.add_argument("--on-chip", action="store_true",
                    help="keep what fits of the weights, then of the KV cache, in the weight buffer across decode "
                         "steps (half of a double-buffered buffer; weights first); default: every step reads them "
                         "from DRAM")
    sp.add_argument("--layers", action="store_true", help="also print per-layer detail (prefill and the last "
                                                          "decode step) per batch")
    sp.add_argument("--out", default=None, help="write the rows (.csv or .json)")
    sp.set_defaults(func=cmd_llm)


def errors() -> list:
    return []


def _batches(text: str) -> list[int]:
    from workloads.llm import LlmError
    out = []
    for part in str(text).split(","):
        try:
            b = int(part)
        except ValueError:
            raise LlmError(f"--batch {text}: expected comma-separated positive integers, got {part!r}") from None
        if b < 1:
            raise LlmError(f"--batch {text}: expected positive integers, got {b}")
        out.append(b)
    return out


def cmd_llm(args) -> int:
    import accel
    from sparsim._io import check_writable, writing
    from workloads.llm import LlmError, check_run
    from workloads.patterns import parse_pattern
    from workloads.quant import kv_quant, weight_quant
    # everything that can be checked without building the model, first
    check_writable(args.out, "--out", (".csv", ".json"))
    batches = _batches(args.batch)
    for b in batches:
        check_run(b, args.prompt, args.generate)
    if args.weight_bits is not None:
        weight_quant(args.weight_bits, args.group_size)
    kv_quant(args.kv_bits)
    if args.act_sparsity is not None and not (0 < args.act_sparsity <= 1):
        raise LlmError(f"--act-sparsity: expected a density in (0, 1], got {args.act_sparsity}")
    if args.sparsity is not None:
        parse_pattern(args.sparsity)
    acc = accel.load(args.accel)
    from sparsim.api import llm_model, run_llm
    model = llm_model(args.model, blocks=args.blocks, seed=args.seed, sparsity=args.sparsity,
                      weight_bits=args.weight_bits, group_size=args.group_size, kv_bits=args.kv_bits,
                      act_sparsity=args.act_sparsity, moe_routing=args.moe_routing)
    runs = [run_llm(model, acc, b, args.prompt, args.generate, detail=args.layers, on_chip=args.on_chip)
            for b in batches]
    import sys
    print(format_llm_table(runs, model, acc))
    unfit = list(dict.fromkeys(n for r in runs for n in r.unfit))
    if unfit:     # once per run, the layers named
        shown = ", ".join(unfit[:8]) + (f" and {len(unfit) - 8} more" if len(unfit) > 8 else "")
        print(f"warning: on '{acc.name}' the mapping of {len(unfit)} layers does not fit the buffers (even the "
              f"smallest tiles overflow one): {shown}; their cycles and energy are not what this hardware can do",
              file=sys.stderr)
    if args.layers:
        for r in runs:
            print()
            print(format_llm_layers(r))
    if args.out:
        with writing(args.out, "--out"):
            write_rows(runs, args.out)
        print(f"wrote {args.out}")
    return 0


def format_llm_table(runs, model, acc) -> str:
    from sparsim.cli import _table
    rows = [[str(r.batch), f"{r.ttft_s * 1e3:.3f}", f"{r.tpot_mean_s * 1e3:.4f}", f"{r.tpot_last_s * 1e3:.4f}",
             f"{r.tokens_per_s:.1f}", f"{r.energy_per_token_j * 1e3:.3f}", f"{r.dram_bytes_per_token / 1e6:.2f}",
             r.bound] for r in runs]
    out = _table(COLUMNS, rows, set(COLUMNS) - {"bound"})
    s = model.shape
    r0 = runs[0]
    out += ["", f"{s.name} ({s.params / 1e9:.3f}B parameters, {s.layers} blocks, {len(model.blocks)} traced"
                f"{', scaled x%g' % model.scale if model.scale != 1 else ''}; {s.heads} heads / {s.kv_heads} KV heads"
                f"{', %d experts top-%d' % (s.experts, s.top_k) if s.experts else ''}) on {acc.name}: "
                f"prompt {r0.prompt}, {r0.generate} generated tokens; KV cache {model.kv.bits} bits "
                f"({s.kv_bytes_per_token(model.kv.bits) / 1024:.1f} KiB per token)"]
    return "\n".join(out)


def format_llm_layers(run) -> str:
    from sparsim.cli import _table
    header = ["phase", "name", "M", "N", "K", "groups", "pattern", "bits", "mode", "x", "cycles", "DRAM_MB", "energy_uJ"]
    rows = [[d["phase"], d["name"], str(d["m"]), str(d["n"]), str(d["k"]), str(d["groups"]), d["pattern"], d["bits"],
             d["mode"], f"{d['times']:g}", f"{d['cycles']:.0f}", f"{d['dram_bytes'] / 1e6:.3f}",
             f"{d['energy_pj'] / 1e6:.3f}"] for d in run.layers]
    title = f"batch {run.batch}: per layer (prefill; decode at the last step, L = {run.prompt + run.generate}); " \
            f"x = blocks a traced layer stands for"
    return "\n".join([title] + _table(header, rows, {"M", "N", "K", "groups", "x", "cycles", "DRAM_MB", "energy_uJ"}))


def write_rows(runs, path: str) -> None:
    import json
    import os
    rows = [r.row() for r in runs]
    tmp = f"{path}.tmp{os.getpid()}"
    if path.lower().endswith(".json"):
        with open(tmp, "w") as f:
            json.dump(rows, f, indent=1)
    else:
        import csv
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    os.replace(tmp, path)


def cmd_llm_search(args) -> int:
    """``sparsim search --model hf:... --objective tpot|token-energy``: per-layer patterns of an LLM
    with the most retained weight magnitude within ``--budget`` x the dense decode TPOT (or energy
    per token), from exact per-layer tables (:func:`search.llm.decode_search.search_llm`)."""
    import accel
    from sparsim.cli import _table
    from search.errors import SearchError
    from search.llm.decode_search import OBJECTIVES, search_llm
    from sparsim._io import check_writable
    from workloads.llm import check_run
    from workloads.patterns import parse_pattern
    if not (args.model or "").startswith("hf:"):
        raise SearchError(f"--objective {args.objective}: the LLM objectives take an hf: model (--model hf:NAME "
                          f"or hf:/path)")
    if args.objective not in OBJECTIVES:
        raise SearchError(f"--model {args.model}: an LLM is searched with --objective "
                          f"{' or '.join(OBJECTIVES)}, got {args.objective or 'none'}")
    check_writable(args.out, "--out", (".csv",))
    budget = 0.8 if args.budget is None else args.budget
    if not 0 < budget <= 1:
        raise SearchError(f"--budget {budget}: expected a fraction of the dense model's {args.objective} in (0, 1]")
    check_run(args.batch, args.prompt, args.generate)
    cands = [c.strip() for c in args.candidates.split(",") if c.strip()]
    for c in cands:
        parse_pattern(c)
    acc = accel.load(args.accel)
    from sparsim.api import llm_model
    model = llm_model(args.model, blocks=1, seed=args.seed)
    res = search_llm(model, acc, args.batch, args.prompt, args.generate, objective=args.objective, budget=budget,
                     candidates=cands)
    run = res["run"]
    counts: dict = {}
    for name, p in res["assignment"].items():
        short = name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1]
        counts.setdefault(short, {}).setdefault(p, 0)
        counts[short][p] += 1
    rows = [[k, ", ".join(f"{p} x{n}" for p, n in v.items())] for k, v in counts.items()]
    print("\n".join(_table(["layer (per traced block)", "pattern"], rows, set())))
    unit, scale = ("ms", 1e3) if args.objective == "tpot" else ("mJ", 1e3)
    got = run.tpot_mean_s if args.objective == "tpot" else run.energy_per_token_j
    print(f"\n{model.name} on {acc.name}, batch {args.batch}, prompt {args.prompt}, {args.generate} tokens: "
          f"{args.objective} dense {res['dense'] * scale:.4f} {unit}, chosen {got * scale:.4f} {unit} "
          f"({got / res['dense']:.3f} x; budget {budget:g}); table sum {res['predicted'] * scale:.4f} {unit}; "
          f"retained magnitude {res['proxy']:.4f}; TPOT {run.tpot_mean_s * 1e3:.4f} ms, "
          f"energy/token {run.energy_per_token_j * 1e3:.3f} mJ")
    if args.out:
        import csv
        with open(args.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["layer", "pattern"])
            w.writerows(res["assignment"].items())
        print(f"wrote {args.out}")
    return 0
