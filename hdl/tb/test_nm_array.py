"""cocotb testbench of nm_array: Driver (weights, stream) / Monitor / Model / Checker.

Test vectors come from the JSON file named by SPARSIM_TB_VECTOR (written by tests/); the model is
simulator.golden.nm_array_timeline; observations go to SPARSIM_TB_RESULT.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hdl.tb.common import HoldDriver, pack, unpack_signed
from simulator.golden import ArrayFold, array_row_result, nm_array_timeline


@cocotb.test()
async def nm_array_matches_golden_model(dut):
    vec = json.loads(open(os.environ["SPARSIM_TB_VECTOR"]).read())
    p = vec["params"]
    R, C, N, M, DW, AW, IW, GW = (p[k] for k in ("R", "C", "N", "M", "DW", "AW", "IW", "GW"))
    folds = [ArrayFold(tuple(map(tuple, f["w"])), tuple(map(tuple, f["idx"])), tuple(map(tuple, f["rows"])),
                       tuple(f["gsel"]) if f.get("gsel") is not None else None)
             for f in vec["folds"]]
    independent = bool(vec.get("independent"))
    if independent:
        # the timing check: only values are checked against the model; the cycles are measured, not
        # predicted, so a change of the RTL's timing shows as an error figure, not a failure here
        expected, first_in = [], None
        want_rows = [(list(array_row_result(f, row, N, M, AW)), i == len(f.rows) - 1)
                     for f in folds for i, row in enumerate(f.rows)]
        n_cycles = int(vec["max_cycles"])
    else:
        expected, first_in, n_cycles = nm_array_timeline(folds, vec["wl_valid"], vec["in_valid"], vec["out_ready"],
                                                         R, C, N, M, AW)
    wbeats = [(f.w[r], f.idx[r], f.group_of(r, N)) for f in folds for r in range(R)]
    sbeats = [(row, i == len(f.rows) - 1) for f in folds for i, row in enumerate(f.rows)]

    cocotb.start_soon(Clock(dut.clk, 10, units="ns").start())
    for name in ("rst_n", "wl_valid", "in_valid", "in_last", "out_ready", "wl_w", "wl_idx", "wl_gsel", "in_act"):
        getattr(dut, name).value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1

    wdrv, sdrv = HoldDriver(wbeats, vec["wl_valid"]), HoldDriver(sbeats, vec["in_valid"])
    w_acc = s_acc = False
    events, first_seen = [], None
    for t in range(n_cycles + 4):
        wb = wdrv.step(t, w_acc)
        sb = sdrv.step(t, s_acc)
        dut.wl_valid.value = int(wb is not None)
        if wb is not None:
            dut.wl_w.value = pack(wb[0], DW)
            dut.wl_idx.value = pack(wb[1], IW)
            dut.wl_gsel.value = pack([wb[2]], GW)
        dut.in_valid.value = int(sb is not None)
        if sb is not None:
            dut.in_act.value = pack(sb[0], DW)
            dut.in_last.value = int(sb[1])
        dut.out_ready.value = int(vec["out_ready"][t]) if t < len(vec["out_ready"]) else 1
        await ReadOnly()
        w_acc = bool(dut.wl_valid.value) and bool(dut.wl_ready.value)
        s_acc = bool(dut.in_valid.value) and bool(dut.in_ready.value)
        if (w_acc or s_acc) and first_seen is None:
            first_seen = t
        if bool(dut.out_valid.value) and bool(dut.out_ready.value):
            events.append((t, list(unpack_signed(dut.out_data.value.integer, AW, C)), bool(dut.out_last.value)))
        await RisingEdge(dut.clk)
        if independent and len(events) == len(want_rows):
            break

    errors = []
    if independent:
        got_rows = [(v, last) for _, v, last in events]
        if got_rows != want_rows:
            errors.append(f"output values differ from the model's ({len(got_rows)} rows, expected {len(want_rows)})")
    else:
        exp = [(e.cycle, list(e.values), e.last) for e in expected]
        if len(events) != len(exp):
            errors.append(f"{len(events)} output rows, expected {len(exp)}")
        for i, (got, want) in enumerate(zip(events, exp)):
            if got != want:
                errors.append(f"output row {i}: got {got}, expected {want}")
        if first_seen != first_in:
            errors.append(f"first input accepted in cycle {first_seen}, model says {first_in}")
    activity = {}
    for name in ("act_mults", "act_weight_writes", "act_in_beats", "act_out_beats"):
        try:
            activity[name[4:]] = int(getattr(dut, name).value)
        except AttributeError:   # built without SPARSIM_ACTIVITY
            pass
    with open(os.environ["SPARSIM_TB_RESULT"], "w") as f:
        json.dump({"events": events, "first_in": first_seen, "activity": activity,
                   "cycles": (events[-1][0] - first_seen + 1) if events else 0}, f)
    assert not errors, "\n".join(errors[:10])
