"""Simulation results: one row per layer with fixed, documented columns, plus totals."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .columns import COLUMNS
from .columns import totals as totals_of

#: What each column of :attr:`SimResult.layers` means (units are in the names).
COLUMN_DOCS = {
    "name": "layer name", "kind": "op kind", "phase": "forward / backward_data / backward_weight",
    "m": "GEMM rows", "n": "GEMM columns per group", "k": "reduction length", "groups": "independent GEMMs",
    "pattern": "the mask's pattern ('mask' when it came from the model, '-' when weightless)",
    "density": "fraction of weights kept", "mode": "the hardware mode chosen (dense or N:M)",
    "folds": "array tiles computed", "cycles": "layer latency in cycles, memory included",
    "compute_cycles": "cycles of the array alone (SCALE-Sim's 'Total Cycles' for a dense layer)",
    "stall_cycles": "cycles - compute_cycles: waiting on DRAM or SRAM",
    "macs": "dense multiply-accumulates", "effective_macs": "MACs with a nonzero weight",
    "executed_macs": "MAC slots the array actually ran (nonzero or not): multiplies, index-mux selects and "
                     "partial-sum register writes each",
    "weight_loads": "weight values written into PE registers (kept slots, reloaded per pass over the stream)",
    "utilization": "effective_macs / (cycles x PEs)", "sram_bytes": "bytes read and written in on-chip buffers",
    "dram_bytes": "bytes moved to and from DRAM", "meta_bytes": "sparse metadata bytes from DRAM",
    "energy_pj": "total energy", "energy_mac_pj": "MACs (active, zero and gated) and their registers",
    "energy_sram_pj": "on-chip buffers (operands)", "energy_dram_pj": "DRAM (operands)",
    "energy_meta_pj": "metadata: buffers, DRAM and index muxes", "energy_static_pj": "static power x latency",
    "loop_order": "the mapping's DRAM-level loop order, outer > inner (simulator/mapping.py)",
    "tile_m": "rows (m) of the buffer tile", "tile_n": "columns (n) of the buffer tile",
    "tile_k": "reduction slots (compressed k) of the buffer tile",
    "dram_act_bytes": "activation bytes read from DRAM", "dram_weight_bytes": "weight and metadata bytes from DRAM",
    "dram_out_bytes": "output bytes written to DRAM, with spilled partial sums written and re-read",
    "compulsory_bytes": "DRAM bytes if every operand moved once (a conv's input as its feature map)",
}



@dataclass
class SimResult:
    layers: pd.DataFrame
    totals: pd.Series
    accelerator: dict
    workload: dict
    #: layers whose mapping does not fit the buffers (even the smallest tiles overflow one): the engine
    #: used it anyway, so their cycles and energy are not what this hardware can do
    unfit: tuple = ()

    @classmethod
    def from_rows(cls, rows, acc, workload) -> "SimResult":
        df = pd.DataFrame(rows, columns=COLUMNS)
        totals = pd.Series(totals_of(rows, acc.compute.pes, acc.compute.clock_hz), dtype=object)
        wl = {"name": workload.name, "batch": workload.batch, "layers": len(workload.layers),
              "macs": int(workload.macs)}
        return cls(layers=df, totals=totals, accelerator=acc.to_dict(), workload=wl,
                   unfit=tuple(r["name"] for r in rows if r.get("fits") is False))

    def unfit_warning(self) -> str | None:
        """One line naming the layers whose mapping does not fit the buffers, or None."""
        if not self.unfit:
            return None
        shown = ", ".join(self.unfit[:8]) + (f" and {len(self.unfit) - 8} more" if len(self.unfit) > 8 else "")
        return (f"warning: on '{self.accelerator.get('name')}' the mapping of {len(self.unfit)} of "
                f"{len(self.layers)} layers does not fit the buffers (even the smallest tiles overflow one): "
                f"{shown}; their cycles and energy are not what this hardware can do")

    def totals_dict(self) -> dict:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self.totals.items()}

    def to_dict(self) -> dict:
        # row by row through Python floats: pandas' own JSON writer keeps 15 digits, not the 17 a float needs
        layers = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                  for row in self.layers.to_dict(orient="records")]
        return {"layers": layers, "totals": self.totals_dict(),
                "accelerator": self.accelerator, "workload": self.workload}

    def _atomic(self, path, write):
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)
        return path

    def to_json(self, path) -> Path:
        return self._atomic(path, lambda p: p.write_text(json.dumps(self.to_dict(), indent=1)))

    def to_csv(self, path) -> Path:
        return self._atomic(path, lambda p: self.layers.to_csv(p, index=False))

    def to_parquet(self, path) -> Path:
        return self._atomic(path, lambda p: self.layers.to_parquet(p, index=False))

    def save(self, path) -> Path:
        """Write by extension: .json (layers, totals, accelerator, workload), .csv or .parquet (layers)."""
        suffix = Path(path).suffix.lower()
        writers = {".json": self.to_json, ".csv": self.to_csv, ".parquet": self.to_parquet}
        if suffix not in writers:
            from .errors import SimulationError
            raise SimulationError(f"--out {path}: expected a .json, .csv or .parquet file name")
        return writers[suffix](path)
