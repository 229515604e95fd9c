"""The reference pages generated from the code leave nothing out: every subcommand and flag of the
CLI, every accelerator key (with a default that is the one the validator applies), every result column."""
from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _gen():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _gen()


def test_every_flag_of_every_subcommand_is_documented():
    from sparsim.cli import build_parser
    parser = build_parser()
    page = gen.cli_reference(parser)
    subs = gen.subcommands(parser)
    assert {"trace", "simulate", "search", "sweep", "results", "report", "prune", "calibrate", "synth"} <= set(subs)
    undocumented = []
    for name, (sp, helptext) in subs.items():
        assert f"## {name}\n" in page, name
        assert helptext, f"sparsim {name} has no help= text in its add_parser call"
        for a in gen.documented_actions(sp):
            if not (a.help or "").strip():
                undocumented.append(f"sparsim {name} {'/'.join(a.option_strings) or a.dest}")
            for opt in a.option_strings:
                assert f"`{opt}`" in page, f"sparsim {name} {opt} missing from the CLI reference"
            for c in a.choices or ():
                assert f"`{c}`" in page
    assert not undocumented, f"flags without a help= text (the CLI reference shows that text): {undocumented}"


def test_cli_reference_picks_up_a_new_subcommand_and_flag():
    """A subcommand added later appears with its flags, and one without help is caught."""
    from sparsim.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sp = sub.add_parser("frobnicate", help="a command added by someone else")
    sp.add_argument("--widgets", type=int, default=3, help="how many widgets")
    sp.add_argument("--mode", choices=["a", "b"], help="which mode")
    page = gen.cli_reference(parser)
    assert "## frobnicate" in page and "| `--widgets` `WIDGETS` | `3` |  | how many widgets |" in page
    assert "`a`, `b`" in page
    sp.add_argument("--secret")
    assert any(not a.help for a in gen.documented_actions(sp))


BASE = {"name": "t", "compute": {"rows": 4, "cols": 4, "dataflow": "ws", "clock_hz": 1e9},
        "memories": [{"name": "m", "size_bytes": 65536, "read_bw_bytes_per_cycle": 64,
                      "holds": ["activation", "weight", "output"]}],
        "dram": {"bandwidth_bytes_per_s": 1e10}}
FPGA = {"device": "custom", "dsp": 10000, "bram36": 1000, "lut": 10**6, "ff": 10**6}


def test_every_accelerator_key_has_a_type_default_and_meaning():
    from accel.keydocs import KEY_DOCS
    paths = gen.accel_key_paths()
    assert len(paths) == len(set(paths))
    assert set(paths) == set(KEY_DOCS), (f"keys the validator accepts without docs: {sorted(set(paths) - set(KEY_DOCS))}; "
                                         f"documented keys it does not accept: {sorted(set(KEY_DOCS) - set(paths))}")
    page = gen.accel_keys_reference()
    for p in paths:
        d = KEY_DOCS[p]
        assert d.type and d.meaning, p
        assert f"`{p.replace('memories.', 'memories[i].')}`" in page, p


def _with(doc, path, value):
    doc = copy.deepcopy(doc)
    *sections, key = path.split(".")
    node = doc
    for s in sections:
        node = node["memories"][0] if s == "memories" else node.setdefault(s, {})
    node[key] = value
    return doc


@pytest.mark.parametrize("path", [p for p in _gen().accel_key_paths()])
def test_documented_literal_default_is_the_validators(path):
    """Spelling a documented default out builds the same accelerator as leaving the key out."""
    import accel
    from accel.keydocs import KEY_DOCS, REQUIRED, Derived
    d = KEY_DOCS[path].default
    if d is REQUIRED or isinstance(d, Derived) or d == REQUIRED:
        pytest.skip("required, or a default that depends on other keys")
    base = copy.deepcopy(BASE)
    if path.startswith("fpga."):
        base["fpga"] = dict(FPGA)
    if path.startswith("cores."):
        base["cores"] = {"count": 2}
    section, key = path.rsplit(".", 1) if "." in path else ("", path)
    node = base if not section else (base["memories"][0] if section == "memories" else base.get(section, {}))
    node.pop(key, None)                        # the base leaves the key out
    assert accel.build(_with(base, path, d)) == accel.build(base), path


def test_every_result_column_has_a_meaning():
    from simulator.columns import COLUMNS
    from simulator.event import EVENT_COLUMN_DOCS, EVENT_COLUMNS
    from simulator.result import COLUMN_DOCS
    assert [c for c in COLUMNS if not COLUMN_DOCS.get(c)] == []
    assert [c for c in EVENT_COLUMNS if not EVENT_COLUMN_DOCS.get(c)] == []
    missing = [c for c in gen.sweep_columns() if not (gen.SWEEP_COLUMN_DOCS.get(c) or COLUMN_DOCS.get(c))]
    assert missing == [], f"sweep result columns without a meaning (add them to scripts/docs_reference.py): {missing}"
    page = gen.columns_reference()
    for c in COLUMNS + EVENT_COLUMNS + gen.sweep_columns():
        assert f"| `{c}` |" in page, c
