"""``sparsim prune``: hardware-aware pruning of a digits zoo model with real accuracy."""
from __future__ import annotations

import argparse
import json
import os


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction of the dense cost in (0, 1], got {text!r}") from None


def register(subparsers) -> None:
    sp = subparsers.add_parser(
        "prune", help="train, prune to a hardware budget, fine-tune; dense vs pruned accuracy, cycles, energy",
        description="Train (mlp_digits, cnn_digits on scikit-learn digits), choose per-layer patterns with the "
                    "hardware-aware sparsifier within BUDGET x the dense model's cycles (or energy) at --batch, "
                    "fine-tune under the masks, and report dense vs pruned accuracy, cycles and energy.")
    sp.add_argument("--model", required=True, help="mlp_digits or cnn_digits")
    sp.add_argument("--accel", required=True, help="preset name or accelerator YAML")
    sp.add_argument("--budget", required=True, type=_fraction, help="fraction of the dense cost, in (0, 1]")
    sp.add_argument("--objective", default="latency", choices=["latency", "energy"])
    sp.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    sp.add_argument("--batch", type=int, default=1, help="batch the cost is simulated at (default 1)")
    sp.add_argument("--permute", action="store_true", help="permute input channels before choosing N:M masks")
    sp.add_argument("--finetune", default="fixed", choices=["fixed", "srste"],
                    help="masks fixed, or SR-STE (masks re-picked each step) for N:M layers")
    sp.add_argument("--proxy", default="sensitivity", choices=["sensitivity", "magnitude"],
                    help="what the search keeps: per-layer loss sensitivity on the training split (default) or "
                         "retained weight magnitude")
    sp.add_argument("--candidates", default=None, help="comma-separated patterns (default: dense + the "
                                                       "accelerator's sparse modes)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", default=None, help="write the pruned model's state_dict (torch.save)")
    sp.add_argument("--report", default=None, help="write a JSON report")
    sp.set_defaults(func=cmd_prune)


def errors() -> list:
    from search.errors import SearchError
    return [SearchError]


def _write_atomic(path: str, write) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def cmd_prune(args) -> int:
    import torch
    from search.prune import prune_digits
    from sparsim._io import check_writable, writing
    check_writable(args.out, "--out", (".pt", ".pth"), "it is the pruned model's state_dict (torch.save)")
    check_writable(args.report, "--report", (".json",))
    # the digits models are tiny: one thread is faster than several, and spins no idle cores
    torch.set_num_threads(1)
    res = prune_digits(args.model, args.accel, args.budget, objective=args.objective, epochs=args.epochs,
                       batch=args.batch, permute=args.permute, seed=args.seed, finetune=args.finetune,
                       candidates=args.candidates, progress=True, proxy=args.proxy)
    r = res.report
    print(f"{r['model']} on {r['accelerator']}, batch {r['batch']}, budget {r['budget']:g} x dense "
          f"{'cycles' if r['objective'] == 'latency' else 'energy'}, seed {r['seed']}")
    print(f"{'layer':12s} {'pattern':8s} {'mode':6s}" + ("  permutation efficacy" if r["permutation_efficacy"] else ""))
    for layer, pat in r["patterns"].items():
        eff = r["permutation_efficacy"].get(layer)
        print(f"{layer:12s} {pat:8s} {r['modes'].get(layer, '-'):6s}" + (f"  {eff * 100:.1f} %" if eff is not None else ""))
    print(f"{'':12s} {'dense':>12s} {'pruned':>12s} {'ratio':>7s}")
    print(f"{'accuracy %':12s} {r['dense_accuracy']:12.2f} {r['accuracy']:12.2f} {r['accuracy'] - r['dense_accuracy']:+7.2f}")
    print(f"{'cycles':12s} {r['dense_cycles']:12,d} {r['cycles']:12,d} {r['cycles'] / r['dense_cycles']:7.3f}")
    print(f"{'energy uJ':12s} {r['dense_energy_pj'] / 1e6:12.3f} {r['energy_pj'] / 1e6:12.3f} "
          f"{r['energy_pj'] / r['dense_energy_pj']:7.3f}")
    if args.out:
        with writing(args.out, "--out"):
            _write_atomic(args.out, lambda p: torch.save(res.model.state_dict(), p))
        print(f"wrote {args.out}")
    if args.report:
        with writing(args.report, "--report"):
            _write_atomic(args.report, lambda p: open(p, "w").write(json.dumps(r, indent=2) + "\n"))
        print(f"wrote {args.report}")
    return 0
