"""The columns of a fast-engine result row (:attr:`SimResult.layers`), importable without NumPy or
Numba (a results store checks its schema against them before anything is simulated)."""
from numbers import Integral, Real

COLUMNS = ["name", "kind", "phase", "m", "n", "k", "groups", "pattern", "density", "mode", "folds", "cycles",
           "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs", "weight_loads", "utilization",
           "sram_bytes", "dram_bytes", "meta_bytes", "energy_pj", "energy_mac_pj", "energy_sram_pj",
           "energy_dram_pj", "energy_meta_pj", "energy_static_pj",
           "loop_order", "tile_m", "tile_n", "tile_k", "dram_act_bytes", "dram_weight_bytes", "dram_out_bytes",
           "compulsory_bytes"]

#: columns of :attr:`SimResult.layers` that its ``totals`` sum
SUMMED = ["folds", "cycles", "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs", "weight_loads",
          "sram_bytes", "dram_bytes", "meta_bytes", "energy_pj", "energy_mac_pj", "energy_sram_pj",
          "energy_dram_pj", "energy_meta_pj", "energy_static_pj", "dram_act_bytes", "dram_weight_bytes",
          "dram_out_bytes", "compulsory_bytes"]
INT_TOTALS = ("folds", "cycles", "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs",
              "weight_loads")


def totals(rows, pes: int, clock_hz: float) -> dict:
    """A result's totals from its layer rows (dicts): :data:`SUMMED` summed as Python ints and
    floats (an int64 column sum could wrap around), then utilization, latency and the layer count."""
    out = {col: sum(int(r[col]) if col in INT_TOTALS else float(r[col]) for r in rows) for col in SUMMED}
    cyc = out["cycles"]
    out["utilization"] = out["effective_macs"] / (cyc * pes) if cyc else 0.0
    out["latency_s"] = cyc / clock_hz
    out["layers"] = len(rows)
    return out


def column_values(rows, columns) -> list[list]:
    """The rows' values column by column, as a DataFrame of them would hold them and give them back
    (``DataFrame(rows, columns=columns)[c].tolist()``) for the types rows hold: a column of integers
    stays Python ints, integers mixed with floats become floats, NumPy scalars become Python ones;
    without building the DataFrame."""
    out = []
    for c in columns:
        vals = [r[c] for r in rows]
        types = set(map(type, vals))
        if types == {int} or types == {float} or types == {str}:
            out.append(vals)        # the common case: already what the frame would give back
            continue
        if all(isinstance(v, Integral) and not isinstance(v, bool) for v in vals):
            vals = [int(v) for v in vals]
        elif all(isinstance(v, Real) and not isinstance(v, bool) for v in vals):
            vals = [float(v) for v in vals]
        else:
            vals = [v.item() if hasattr(v, "item") else v for v in vals]
        out.append(vals)
    return out
