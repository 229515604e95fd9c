"""Speed of the event engine: ResNet-50 with real 2:4 masks on vegeta-flex, and how its event count
grows with the folds (bounded by merging consecutive folds into at most MAX_CHUNKS tiles a layer).

Run: .venv/bin/python benchmarks/bench_event.py   (or `make bench`)
"""
import time

import accel
import sparsim
from simulator import simulate
from simulator.event import simulate_event


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    from docs_out import DocsOut
    out = DocsOut("event", "python benchmarks/bench_event.py")
    rows = []
    wl = sparsim.trace_zoo("resnet50").sparsify("2:4")
    acc = accel.load("vegeta-flex")
    simulate(wl, acc)  # load the Numba cache
    t_fast, fast = best_of(lambda: simulate(wl, acc), 3)
    t_ev, ev = best_of(lambda: simulate(wl, acc, engine="event"), 3)
    print(f"resnet50 2:4 on vegeta-flex: fast {t_fast:.2f} s, event {t_ev:.2f} s (fast plan included); "
          f"{fast.totals['folds']:,} folds -> {ev.tiles:,} tiles, {ev.events:,} SimPy events; "
          f"cycles fast {fast.totals['cycles']:,} event {ev.totals['cycles']:,}")
    rows.append(["`vegeta-flex`", f"{t_fast:.2f}", f"{t_ev:.2f}", f"{fast.totals['folds']:,}", f"{ev.tiles:,}",
                 f"{ev.events:,}", f"{fast.totals['cycles']:,}", f"{ev.totals['cycles']:,}"])
    for preset in ("edge-npu", "tpu-like"):
        a = accel.load(preset)
        t, r = best_of(lambda: simulate(wl, a, engine="event"), 1)
        print(f"resnet50 2:4 on {preset:15s}: event {t:.2f} s; {r.totals['folds']:,} folds -> {r.tiles:,} tiles, "
              f"{r.events:,} events")
        rows.append([f"`{preset}`", "", f"{t:.2f}", f"{r.totals['folds']:,}", f"{r.tiles:,}", f"{r.events:,}", "",
                     f"{r.totals['cycles']:,}"])
    out.table(["ResNet-50 2:4 on", "fast engine s", "event engine s", "folds", "tiles simulated", "SimPy events",
               "cycles (fast)", "cycles (event)"], rows, echo=False)
    grow = []
    # event count against folds, merged and not, on growing layers
    from workloads import Layer, LayerKind, Workload
    for m in (256, 2048, 16384):
        w = Workload(name="fc", layers=(Layer(name="fc", kind=LayerKind.LINEAR, m=m, n=1024, k=1024),))
        for mc in ((None, 24) if m <= 2048 else (24,)):   # fold by fold at m = 16384 takes minutes
            t, r = best_of(lambda: simulate_event(w, acc, max_chunks=mc), 1)
            print(f"  linear m={m:6d}: {r.totals['folds']:6,} folds, max_chunks={str(mc):4s}: {r.tiles:6,} tiles, "
                  f"{r.events:8,} events, {t * 1e3:7.1f} ms, cycles {r.totals['cycles']:,}")
            grow.append([m, f"{r.totals['folds']:,}", "fold by fold" if mc is None else f"at most {mc}",
                         f"{r.tiles:,}", f"{r.events:,}", f"{t * 1e3:.1f}", f"{r.totals['cycles']:,}"])
    out.table(["linear layer m (n = k = 1024)", "folds", "tiles per layer", "tiles", "events", "ms", "cycles"], grow,
              caption="How the event count grows with the folds, with and without merging folds into tiles "
                      "(vegeta-flex):", echo=False)
    # the figure of docs/howto/event-engine.md: two cores, a DRAM channel each, ResNet-18 2:4
    from docs_out import ROOT
    two = accel.load(str(ROOT / "examples" / "accel" / "two-cores-two-channels.yaml"))
    r18 = sparsim.trace_zoo("resnet18").sparsify("2:4")
    res = simulate(r18, two, engine="event", trace=True)
    png = res.plot_dram_bandwidth(out.folder / "event-dram-two-cores.png")
    print(f"resnet18 2:4 on two-cores-two-channels: {res.totals['cycles']:,} cycles; wrote {png}")
    out.text(f"ResNet-18 2:4 on `examples/accel/two-cores-two-channels.yaml` (two vegeta-flex cores, a 16 GB/s DRAM "
             f"channel each): {res.totals['cycles']:,} cycles; DRAM bandwidth over time per channel:")
    out.image(png, "DRAM bandwidth of two cores on two channels, ResNet-18 2:4")
    out.write()


if __name__ == "__main__":
    main()
