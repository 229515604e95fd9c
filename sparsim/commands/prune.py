"""``sparsim prune``: hardware-aware pruning with real accuracy, of a digits zoo model or a user's model
file (``--model file.py:build`` with ``file.py:data`` and optionally ``file.py:evaluate``)."""
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
        description="Choose per-layer patterns with the hardware-aware sparsifier within BUDGET x the dense "
                    "model's cycles (or energy) at --batch, fine-tune under the masks, and report dense vs pruned "
                    "accuracy, cycles and energy. Models: mlp_digits, cnn_digits (trained here on scikit-learn's "
                    "digits), or path/to/file.py:build (the file's data() gives the tensors or loaders, its "
                    "evaluate(model, test) the metric); code_lm or hf:<folder> with --method prunes a language model one-shot "
                    "(Wanda, SparseGPT) against decode TPOT or energy per token. The budget and candidates are "
                    "checked before any training.")
    add_arguments(sp)
    sp.set_defaults(func=cmd_prune)


def add_arguments(sp) -> None:
    """The arguments of ``sparsim prune`` (one place, so a new option or method adds to it)."""
    sp.add_argument("--model", required=True, help="mlp_digits, cnn_digits, path/to/file.py:build_fn returning "
                                                    "(model, example_inputs); code_lm or hf:<folder> (a language "
                                                    "model: see --method)")
    sp.add_argument("--data", default=None, help="file.py:fn returning (x_train, y_train, x_test, y_test) tensors or "
                                                 "(train_loader, test_loader); default: the model file's data()")
    sp.add_argument("--evaluate", default=None, help="file.py:fn(model, test) -> float, higher is better; default: "
                                                     "the model file's evaluate() if it has one, else top-1 accuracy")
    sp.add_argument("--accel", required=True, help="preset name or accelerator YAML")
    sp.add_argument("--budget", required=True, type=_fraction, help="fraction of the dense cost, in (0, 1]")
    sp.add_argument("--objective", default="latency", choices=["latency", "energy", "tpot"],
                    help="what --budget limits, as a fraction of the dense model's: cycles (latency, default) or "
                         "energy; for a language model latency is decode TPOT (also 'tpot')")
    sp.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    sp.add_argument("--dense-epochs", type=int, default=None,
                    help="dense training epochs before pruning (default 30 for the digits models, 0 for a model "
                         "file: its build function returns a trained model)")
    sp.add_argument("--batch", type=int, default=1, help="batch the cost is simulated at (default 1)")
    sp.add_argument("--permute", action="store_true",
                    help="permute input channels for the N:M pattern each layer takes (after the choice)")
    sp.add_argument("--permute-rounds", type=int, default=20, help="rounds of the permutation search (default 20)")
    sp.add_argument("--finetune", default="fixed", choices=["fixed", "srste"],
                    help="masks fixed, or SR-STE (masks re-picked each step) for N:M layers")
    sp.add_argument("--proxy", default="sensitivity", choices=["sensitivity", "magnitude"],
                    help="what the search keeps: per-layer loss sensitivity on the training split (default) or "
                         "retained weight magnitude")
    sp.add_argument("--candidates", default=None, help="comma-separated patterns (default: dense + the "
                                                       "accelerator's sparse modes)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the model's weights, the data split, training, fine-tuning and search (default 0)")
    sp.add_argument("--seeds", default=None, metavar="S1,S2,...",
                    help="run once per seed and report mean and sd of the accuracies (single-run accuracies "
                         "differ between machines: other CPUs run other floating-point kernels)")
    sp.add_argument("--out", default=None, help="write the pruned model's state_dict (torch.save)")
    sp.add_argument("--report", default=None, help="write a JSON report")
    from sparsim.prune_llm import add_arguments as add_llm_arguments
    add_llm_arguments(sp)


def errors() -> list:
    from search.errors import SearchError
    return [SearchError]


def _write_atomic(path: str, write) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def user_function(spec: str, where: str, required: bool = True):
    """The function ``path/to/file.py:name`` names (the file imported once per process), or None when
    ``required`` is False and the file has no such function."""
    import importlib.util
    import sys
    from pathlib import Path
    from search.errors import SearchError
    path_s, sep, fn_name = spec.rpartition(":")
    if not sep or not path_s.endswith(".py") or not fn_name:
        raise SearchError(f"{where} {spec}: expected path/to/file.py:function")
    path = Path(path_s)
    if not path.is_file():
        raise SearchError(f"{where} {spec}: file {path} does not exist")
    mod_name = f"_sparsim_user_model_{abs(hash(str(path.resolve())))}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            loader.loader.exec_module(module)
        except Exception as e:
            raise SearchError(f"{where} {spec}: importing {path} failed: {type(e).__name__}: {e}") from None
        finally:
            sys.path.pop(0)
        sys.modules[mod_name] = module
    fn = getattr(module, fn_name, None)
    if fn is None and not required:
        return None
    if not callable(fn):
        raise SearchError(f"{where} {spec}: {path} has no function '{fn_name}'")
    return fn


def _call(fn, where: str, *args):
    from search.errors import SearchError
    try:
        return fn(*args)
    except SearchError:
        raise
    except Exception as e:
        raise SearchError(f"{where}: {getattr(fn, '__name__', 'the function')}() failed: {type(e).__name__}: {e}") \
            from None


def run_one(args, seed: int):
    """One pruning run of ``args`` at ``seed``: a :class:`search.prune.PruneResult`."""
    from search.errors import SearchError
    from search.prune import prune_digits, prune_model
    kw = dict(objective=args.objective, epochs=args.epochs, permute=args.permute,
              permute_rounds=args.permute_rounds, seed=seed, finetune=args.finetune, candidates=args.candidates,
              progress=True, proxy=args.proxy)
    if ":" not in args.model or not args.model.rpartition(":")[0].endswith(".py"):
        if args.data or args.evaluate:
            raise SearchError(f"--data / --evaluate: apply to a model file (--model file.py:build), not to "
                              f"{args.model}")
        return prune_digits(args.model, args.accel, args.budget, batch=args.batch,
                            dense_epochs=30 if args.dense_epochs is None else args.dense_epochs, **kw)
    from workloads.modelspec import build_model_spec
    path = args.model.rpartition(":")[0]
    data_fn = user_function(args.data or f"{path}:data", "--data")
    eval_fn = user_function(args.evaluate, "--evaluate") if args.evaluate else \
        user_function(f"{path}:evaluate", "--evaluate", required=False)
    model, inputs, name, _ = build_model_spec(args.model, batch=args.batch, seed=seed)
    data = _call(data_fn, f"--data {args.data or path + ':data'}")
    return prune_model(model, inputs, data, args.accel, args.budget, evaluate=eval_fn, name=name,
                       dense_epochs=0 if args.dense_epochs is None else args.dense_epochs, **kw)


def _seeds(text):
    from search.errors import SearchError
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise SearchError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2")
    return seeds


def cmd_prune(args) -> int:
    from sparsim.prune_llm import cmd_prune_llm, is_llm
    if is_llm(args):
        return cmd_prune_llm(args)
    if args.method is not None or args.objective == "tpot":
        from search.errors import SearchError
        raise SearchError(f"--{'method' if args.method is not None else 'objective tpot'} applies to language "
                          f"models (code_lm, hf:<folder>), not to --model {args.model}")
    from sparsim._io import check_writable, writing
    check_writable(args.out, "--out", (".pt", ".pth"), "it is the pruned model's state_dict (torch.save)")
    check_writable(args.report, "--report", (".json",))
    seeds = _seeds(args.seeds) if args.seeds is not None else [args.seed]
    results = [run_one(args, s) for s in seeds]
    for res in results:
        _print(res.report)
    r = results[-1].report
    if len(results) > 1:
        import statistics
        d = [x.report["dense_accuracy"] for x in results]
        p = [x.report["accuracy"] for x in results]
        drop = [b - a for a, b in zip(d, p)]
        print(f"seeds {','.join(map(str, seeds))}: dense {statistics.mean(d):.2f} ± {statistics.stdev(d):.2f}, "
              f"pruned {statistics.mean(p):.2f} ± {statistics.stdev(p):.2f}, change {statistics.mean(drop):+.2f} ± "
              f"{statistics.stdev(drop):.2f} (mean ± sd)")
    if args.out:
        import torch
        with writing(args.out, "--out"):
            _write_atomic(args.out, lambda path: torch.save(results[-1].model.state_dict(), path))
        print(f"wrote {args.out}")
    if args.report:
        doc = r if len(results) == 1 else {"runs": [x.report for x in results]}
        with writing(args.report, "--report"):
            _write_atomic(args.report, lambda path: open(path, "w").write(json.dumps(doc, indent=2) + "\n"))
        print(f"wrote {args.report}")
    return 0


def _print(r: dict) -> None:
    print(f"{r['model']} on {r['accelerator']}, batch {r['batch']}, budget {r['budget']:g} x dense "
          f"{'cycles' if r['objective'] == 'latency' else 'energy'}, seed {r['seed']}")
    perms = r.get("permutations", {})
    print(f"{'layer':12s} {'pattern':8s} {'mode':6s}" + ("  permutation efficacy" if perms else ""))
    for layer, pat in r["patterns"].items():
        p = perms.get(layer)
        note = ""
        if p is not None:
            note = f"  {p['efficacy'] * 100:.1f} % ({p['pattern']})" if p["applied"] else "  none better than identity"
        print(f"{layer:12s} {pat:8s} {r['modes'].get(layer, '-'):6s}{note}")
    metric = "accuracy %" if r.get("metric", "accuracy") == "accuracy" else "metric"
    print(f"{'':12s} {'dense':>12s} {'pruned':>12s} {'ratio':>7s}")
    print(f"{metric:12s} {r['dense_accuracy']:12.2f} {r['accuracy']:12.2f} {r['accuracy'] - r['dense_accuracy']:+7.2f}")
    print(f"{'cycles':12s} {r['dense_cycles']:12,d} {r['cycles']:12,d} {r['cycles'] / r['dense_cycles']:7.3f}")
    print(f"{'energy uJ':12s} {r['dense_energy_pj'] / 1e6:12.3f} {r['energy_pj'] / 1e6:12.3f} "
          f"{r['energy_pj'] / r['dense_energy_pj']:7.3f}")
    if r.get("skipped"):
        print("left dense (no mask can be put on them): " + ", ".join(f"{k} ({v})" for k, v in r["skipped"].items()))
