"""Build and run the RTL under cocotb (``cocotb.runner``) on Verilator or Icarus.

Each unit, parameter set and simulator gets its own build directory under ``hdl/build/``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HDL = Path(__file__).resolve().parent
RTL = HDL / "rtl"
BUILD = HDL / "build"
ROOT = HDL.parent

SIMULATORS = {"verilator": ("verilator", "verilator"), "icarus": ("iverilog", "iverilog")}


DERIVED = ("IW", "GW")   # parameters the RTL computes from the others; never passed to it


class HdlError(ValueError):
    """Parameters the RTL cannot take, or a simulator that is missing."""


def _check_ints(p: dict, lows: dict) -> None:
    for key, low in lows.items():
        v = p.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise HdlError(f"parameter {key}: expected an integer >= {low}, got {v!r}")


def _check_nm(p: dict) -> dict:
    """The rules every N:M unit shares; returns the parameters with the index width IW added."""
    if p["N"] > p["M"]:
        raise HdlError(f"parameters N={p['N']}, M={p['M']}: N must be <= M")
    if p["M"] & (p["M"] - 1):
        raise HdlError(f"parameter M={p['M']}: the index mux needs M to be a power of two")
    if p["AW"] < 2 * p["DW"]:
        raise HdlError(f"parameter AW={p['AW']}: the accumulator must be at least 2 x DW = {2 * p['DW']} bits")
    return {**p, "IW": max(1, (p["M"] - 1).bit_length())}


def check_nm_params(params: dict) -> dict:
    """Validate nm_dot parameters (N:M, G groups per beat, widths) before anything is built."""
    p = dict(params)
    _check_ints(p, {"N": 1, "M": 1, "G": 1, "DW": 2, "AW": 1})
    return _check_nm(p)


def check_array_params(params: dict) -> dict:
    """Validate nm_array parameters (R rows, C columns, N:M, widths) before anything is built."""
    p = dict(params)
    _check_ints(p, {"R": 1, "C": 2, "N": 1, "M": 1, "DW": 2, "AW": 1})
    _check_nm(p)                  # N <= M first: a multiple of an impossible N is no help
    if p["R"] % p["N"]:
        raise HdlError(f"parameter R={p['R']}: rows come in groups of N={p['N']}, so R must be a multiple of N")
    gr = p["R"] // p["N"]
    return {**_check_nm(p), "GW": max(1, (gr - 1).bit_length())}


def simulator_missing(sim: str) -> str | None:
    """None when ``sim`` can run; else one line saying which Debian package to install."""
    if sim not in SIMULATORS:
        raise HdlError(f"simulator must be one of {', '.join(SIMULATORS)}, got {sim!r}")
    exe, pkg = SIMULATORS[sim]
    if shutil.which(exe) is None:
        return f"{sim} is not installed: apt-get install {pkg}"
    return None


def run_unit(unit: str, sim: str, params: dict, vector: dict, test_module: str, quiet: bool = False,
             defines: dict | None = None) -> dict:
    """Build ``hdl/rtl/<unit>.sv`` with ``params`` for ``sim`` and run ``test_module`` on ``vector``.

    Returns what the testbench observed (its result JSON). Raises AssertionError when the
    testbench's checker saw errors, HdlError on bad parameters or a missing simulator."""
    missing = simulator_missing(sim)
    if missing:
        raise HdlError(missing)
    get_runner = _cocotb_runner()
    rtl_params = {k: v for k, v in params.items() if k not in DERIVED}
    defines = dict(defines or {})
    tag = "_".join(f"{k}{v}" for k, v in sorted(rtl_params.items())) + "".join(f"_{k}" for k in sorted(defines))
    build_dir = BUILD / f"{unit}_{sim}_{tag}"
    runner = get_runner(sim)
    build_args = ["-Wall"] if sim == "verilator" else []
    with _quiet(build_dir / "run.log" if quiet else None):
        runner.build(verilog_sources=[RTL / f"{unit}.sv"], hdl_toplevel=unit, parameters=rtl_params,
                     build_dir=build_dir, build_args=build_args, defines=defines)
    with tempfile.TemporaryDirectory() as tmp, _quiet(build_dir / "run.log" if quiet else None):
        vec_path, res_path = Path(tmp) / "vector.json", Path(tmp) / "result.json"
        vec_path.write_text(json.dumps({**vector, "params": params}))
        env = {"SPARSIM_TB_VECTOR": str(vec_path), "SPARSIM_TB_RESULT": str(res_path),
               "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in sys.path if p])}
        results = runner.test(hdl_toplevel=unit, test_module=test_module, build_dir=build_dir,
                              test_dir=build_dir, extra_env=env, parameters=rtl_params)
        _assert_passed(results)
        return json.loads(res_path.read_text())


def _cocotb_runner():
    """cocotb 1.8's ``get_runner``, imported without its warning that the Python runner is
    experimental (printed on every ``calibrate`` run otherwise; the API is pinned with cocotb 1.8)."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Python runners and associated APIs", category=UserWarning)
        from cocotb.runner import get_runner
    return get_runner


class _quiet:
    """Send this process's stdout and stderr (file descriptors, so the simulator's too) to a log."""

    def __init__(self, log: Path | None):
        self.log = log

    def __enter__(self):
        if self.log is None:
            return self
        self.log.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2))
        self.fh = open(self.log, "a")
        os.dup2(self.fh.fileno(), 1)
        os.dup2(self.fh.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self.log is None:
            return False
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])
        self.fh.close()
        return False


def run_on_all_simulators(unit: str, params: dict, vector: dict, test_module: str,
                          defines: dict | None = None) -> dict:
    """Run the same test on every simulator; they must observe the same cycles (else AssertionError).

    Returns {simulator: observations}. Raises HdlError when a simulator is missing."""
    results = {sim: run_unit(unit, sim, params, vector, test_module, defines=defines) for sim in SIMULATORS}
    first, *others = results
    for sim in others:
        if results[sim] != results[first]:
            raise AssertionError(f"{unit}: {first} and {sim} disagree: {results[first]} != {results[sim]}")
    return results


def _assert_passed(results_xml) -> None:
    import xml.etree.ElementTree as ET
    tree = ET.parse(results_xml)
    failures = [tc for tc in tree.iter("testcase") if tc.find("failure") is not None or tc.find("error") is not None]
    cases = list(tree.iter("testcase"))
    if not cases:
        raise AssertionError(f"cocotb ran no test ({results_xml})")
    if failures:
        msgs = []
        for tc in failures:
            f = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
            msgs.append(f"{tc.get('name')}: {f.get('message', '')}")
        raise AssertionError("RTL testbench failed: " + "; ".join(msgs))
