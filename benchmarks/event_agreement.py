"""The two engines' total cycles on every zoo model, dense and 2:4, on every preset (batch 1), as a
Markdown table: (event - fast) / fast. Slow (minutes); not run by `make bench`.

Run: .venv/bin/python benchmarks/event_agreement.py
"""
import accel
import sparsim
from simulator import simulate


def main():
    presets = accel.presets.names()
    accs = [accel.load(p) for p in presets]
    print("| model | pattern | " + " | ".join(presets) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in presets) + " |")
    worst = 0.0
    for name in sparsim.zoo_names():
        wl = sparsim.trace_zoo(name)
        for pat, w in (("dense", wl), ("2:4", wl.sparsify("2:4"))):
            cells = []
            for acc in accs:
                t = simulate(w, acc, engine="event").totals
                d = (t["cycles"] - t["fast_cycles"]) / t["fast_cycles"] * 100
                worst = max(worst, abs(d))
                cells.append(f"{d:+.2f} % ({t['fast_cycles']:,} / {t['cycles']:,})")
            print(f"| {name} | {pat} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nlargest |difference|: {worst:.2f} %  (cells: difference (fast cycles / event cycles))")


if __name__ == "__main__":
    main()
