"""Cases where the event engine rightly disagrees with the fast engine: two cores on one DRAM channel
(against a channel each) and a buffer too small to double buffer.

Run: .venv/bin/python benchmarks/event_cases.py   (the same setups are asserted in tests/test_event.py)
"""
from pathlib import Path

import accel
from simulator import simulate
from simulator.event import STALL_COLUMNS, layer_plan
from workloads import Layer, LayerKind, Workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "accel"


def wl_of(layer):
    return Workload(name="case", layers=(layer,))


def stalls(res):
    return {c[6:-7]: round(res.totals[c]) for c in STALL_COLUMNS if res.totals[c] >= 0.5}


def main():
    fc = Layer(name="fc", kind=LayerKind.LINEAR, m=8, n=4096, k=4096)   # batch-1 linear: memory-bound
    one = simulate(wl_of(fc), accel.load("vegeta-flex")).totals["cycles"]
    half = simulate(wl_of(fc.replace(n=2048)), accel.load("vegeta-flex")).totals["cycles"]
    print(f"memory-bound linear m=8 n=k=4096: fast, one core: {one:,}; fast, one core, half the columns: {half:,}")
    for f in ("two-cores-one-channel.yaml", "two-cores-two-channels.yaml"):
        r = simulate(wl_of(fc), accel.load(EXAMPLES / f), engine="event")
        print(f"  event, {f}: {r.totals['cycles']:,} cycles; stalls (summed over cores) {stalls(r)}")
        print("  " + r.cores[["core", "busy_cycles", "utilization", "stall_weight_cycles",
                              "stall_contention_cycles"]].round(3).to_string(index=False).replace("\n", "\n  "))
    layer = Layer(name="fc", kind=LayerKind.LINEAR, m=256, n=4096, k=256)
    doc = accel.config.read_yaml(accel.presets.path("vegeta-flex"))
    for size in (3000, 65536):
        mems = [dict(m, size_bytes=size) if "weight" in m["holds"] else dict(m) for m in doc["memories"]]
        a = accel.build({**doc, "memories": mems})
        f, e = simulate(wl_of(layer), a).totals["cycles"], simulate(wl_of(layer), a, engine="event")
        c = e.totals["cycles"]
        print(f"filter_sram {size:,} B, linear m=256 n=4096 k=256: slots {layer_plan(layer, a).in_slots}, "
              f"fast {f:,}, event {c:,} ({(c - f) / f * 100:+.1f} %), stalls {stalls(e)}")


if __name__ == "__main__":
    main()
