"""``sparsim prune`` for language models (``--model code_lm`` or ``hf:<folder>``): the flags that
only they take, and the command itself. :mod:`sparsim.commands.prune` dispatches here."""
from __future__ import annotations

import json
import os

#: Flags of the digits path that have no meaning for a language model, with their defaults.
DIGITS_ONLY = {"epochs": 10, "permute": False, "finetune": "fixed", "proxy": "sensitivity", "data": None,
               "evaluate": None, "dense_epochs": None, "permute_rounds": 20, "seeds": None}


def add_arguments(sp) -> None:
    g = sp.add_argument_group("language models (--model code_lm or hf:<folder>)")
    g.add_argument("--method", default=None, help="wanda or sparsegpt: the one-shot pruner (required for an LM)")
    g.add_argument("--prompt", type=int, default=512, help="prompt tokens before decode (KV length; default 512)")
    g.add_argument("--generate", type=int, default=128,
                   help="generated tokens the decode TPOT is the mean over (default 128)")
    g.add_argument("--calib-tokens", type=int, default=8192, help="calibration tokens (default 8192)")
    g.add_argument("--calib", default=None, help="calibration text file (default: code_lm's train split)")
    g.add_argument("--eval-tokens", type=int, default=65536,
                   help="validation and test tokens perplexity is measured on (default 65536)")
    g.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the small models here gain nothing from more, and a shared "
                        "machine loses much to threads that wait for each other)")


def is_llm(args) -> bool:
    return args.model in ("code_lm", "code_lm_tiny") or args.model.startswith("hf:")


def cmd_prune_llm(args) -> int:
    from search.errors import SearchError
    from sparsim._io import check_writable
    from search.llm.run import check_args, prune_llm, save
    for key, default in DIGITS_ONLY.items():
        if getattr(args, key) != default:
            raise SearchError(f"--{key.replace('_', '-')} applies to the digits models and model files only, not to --model "
                              f"{args.model}")
    if args.method is None:
        raise SearchError(f"--model {args.model}: --method wanda or --method sparsegpt is required")
    objective = "tpot" if args.objective in ("latency", "tpot") else args.objective
    check_args(args.method, objective, args.budget, args.batch, args.prompt, args.calib_tokens, 1, args.generate)
    if args.threads < 1:
        raise SearchError(f"--threads {args.threads}: expected a positive integer")
    check_writable(args.report, "--report", (".json",))
    if args.out:
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            raise SearchError(f"--out {args.out}: directory {parent} does not exist")
        if os.path.isfile(args.out):
            raise SearchError(f"--out {args.out}: is a file; expected a folder to write the pruned model into")
    from sparsim.api import accelerator
    acc = accelerator(args.accel)
    cands = args.candidates.split(",") if args.candidates else None
    kw = {"candidates": cands} if cands else {}
    report, model, tok, masks = prune_llm(args.model, args.method, acc, objective=objective, budget=args.budget,
                                          batch=args.batch, prompt=args.prompt, generate=args.generate, calib_tokens=args.calib_tokens,
                                          calib_file=args.calib, seed=args.seed, eval_tokens=args.eval_tokens,
                                          progress=True, threads=args.threads, **kw)
    print(format_report(report))
    if args.out:
        save(args.out, report, model, tok, masks)
        print(f"wrote {args.out}/")
    if args.report:
        tmp = f"{args.report}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, args.report)
        print(f"wrote {args.report}")
    return 0


def format_report(r: dict) -> str:
    out = [f"{r['model']} pruned by {r['method']} for {r['accelerator']}, batch {r['batch']}, prompt {r['prompt']}, "
           f"{r['generate']} generated, "
           f"budget {r['budget']:g} x dense {'TPOT' if r['objective'] == 'tpot' else 'energy per token'} "
           f"({r['cost_source']})"]
    out.append(f"{'layer':34s} {'pattern':18s} {'sparsity':>8s}")
    for layer, pat in r["patterns"].items():
        out.append(f"{layer:34s} {pat:18s} {r['sparsity'][layer]:8.3f}")
    d, p = r["dense"], r["pruned"]
    out.append(f"{'':18s} {'dense':>12s} {'pruned':>12s} {'ratio':>7s}")
    out.append(f"{'test perplexity':18s} {d['test_perplexity']:12.3f} {p['test_perplexity']:12.3f} "
               f"{p['test_perplexity'] / d['test_perplexity']:7.3f}")
    out.append(f"{'TPOT us':18s} {d['tpot_s'] * 1e6:12.3f} {p['tpot_s'] * 1e6:12.3f} {r['ratio']['tpot']:7.3f}")
    out.append(f"{'energy/token uJ':18s} {d['energy_per_token_pj'] / 1e6:12.4f} {p['energy_per_token_pj'] / 1e6:12.4f} "
               f"{r['ratio']['energy_per_token']:7.3f}")
    out.append("seconds (wall / CPU): " + ", ".join(f"{k} {v['wall_s']:.1f} / {v['cpu_s']:.1f}"
                                                     for k, v in r["seconds"].items()))
    return "\n".join(out)
