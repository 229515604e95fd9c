"""cocotb testbench of nm_dot: Driver / Monitor / Model / Checker.

The test vector (beats, handshake patterns, parameters) comes from the JSON file named by the
SPARSIM_TB_VECTOR environment variable; the pytest runner in tests/ writes it. The model is
simulator.golden; the test ends by asserting the checker saw zero errors, and writes what it
observed (cycles) to SPARSIM_TB_RESULT so that the runner can compare simulators.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hdl.tb.common import HoldDriver, pack
from simulator.golden import Beat, nm_dot_timeline


class Driver(HoldDriver):
    """Drives nm_dot's input port from the held beat."""

    def __init__(self, dut, beats, valid, p):
        super().__init__(beats, valid)
        self.dut, self.p = dut, p

    def drive(self, t, accepted_last_cycle):
        b = self.step(t, accepted_last_cycle)
        d, p = self.dut, self.p
        d.in_valid.value = int(b is not None)
        if b is not None:
            d.act.value = pack(b.act, p["DW"])
            d.wgt.value = pack(b.wgt, p["DW"])
            d.idx.value = pack(b.idx, p["IW"])
            d.in_last.value = int(b.last)


class Monitor:
    def __init__(self, dut):
        self.dut = dut
        self.events = []

    def sample(self, t):
        d = self.dut
        in_fire = bool(d.in_valid.value) and bool(d.in_ready.value)
        if bool(d.out_valid.value) and bool(d.out_ready.value):
            self.events.append((t, d.out_data.value.signed_integer, bool(d.out_err.value)))
        return in_fire


class Checker:
    def __init__(self, expected):
        self.expected = [(e.cycle, e.value, e.err) for e in expected]
        self.errors = []

    def check(self, observed):
        if len(observed) != len(self.expected):
            self.errors.append(f"{len(observed)} outputs, expected {len(self.expected)}")
        for i, (got, exp) in enumerate(zip(observed, self.expected)):
            if got != exp:
                self.errors.append(f"output {i}: got (cycle, value, err) {got}, expected {exp}")


@cocotb.test()
async def nm_dot_matches_golden_model(dut):
    vec = json.loads(open(os.environ["SPARSIM_TB_VECTOR"]).read())
    p = vec["params"]
    beats = [Beat(tuple(b["act"]), tuple(b["wgt"]), tuple(b["idx"]), bool(b["last"])) for b in vec["beats"]]
    valid, ready = vec["valid"], vec["ready"]
    expected, first_in, n_cycles = nm_dot_timeline(beats, valid, ready, p["N"], p["M"], p["AW"])

    cocotb.start_soon(Clock(dut.clk, 10, units="ns").start())
    dut.rst_n.value = 0
    dut.in_valid.value = 0
    dut.in_last.value = 0
    dut.out_ready.value = 0
    dut.act.value = 0
    dut.wgt.value = 0
    dut.idx.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1

    driver, monitor = Driver(dut, beats, valid, p), Monitor(dut)
    first_seen, accepted = None, False
    for t in range(n_cycles + 4):
        driver.drive(t, accepted)
        dut.out_ready.value = int(ready[t]) if t < len(ready) else 1
        await ReadOnly()
        accepted = monitor.sample(t)
        if accepted and first_seen is None:
            first_seen = t
        await RisingEdge(dut.clk)

    checker = Checker(expected)
    checker.check(monitor.events)
    if first_seen != first_in:
        checker.errors.append(f"first beat accepted in cycle {first_seen}, model says {first_in}")
    result = {"events": monitor.events, "first_in": first_seen,
              "cycles": (monitor.events[-1][0] - first_seen + 1) if monitor.events else 0}
    with open(os.environ["SPARSIM_TB_RESULT"], "w") as f:
        json.dump(result, f)
    assert not checker.errors, "\n".join(checker.errors[:10])
