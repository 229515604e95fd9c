"""What a search returns: the front (one row per point), the baselines, and the masks of any point."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workloads import Workload

from .cost import HardwareCost
from .errors import SearchError

#: Columns of :attr:`SearchResult.front` before the hardware axes and the ``layer:<name>`` columns.
FRONT_COLUMNS = ["proxy", "cycles", "energy_pj", "dram_bytes", "speedup"]


@dataclass
class SearchResult:
    """``front``: DataFrame with ``proxy`` (higher is better), ``cycles``, ``energy_pj``,
    ``dram_bytes``, ``speedup`` (over dense on the same accelerator), the hardware axes when joint,
    and ``layer:<name>`` (pattern text) per layer; ``baselines``: the same metrics per baseline
    (``name`` column); ``random``: random search's non-dominated points (Pareto objective);
    ``infeasible``: hardware points that do not fit the FPGA budget, with the reason."""

    front: pd.DataFrame
    baselines: pd.DataFrame
    objective: str
    proxy: str
    budget: float | None
    costs: dict = field(repr=False)                 # hardware key -> HardwareCost
    assignments: list = field(repr=False)           # per front row: (hardware key, int array)
    random: pd.DataFrame | None = None
    infeasible: pd.DataFrame | None = None
    hardware_axes: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    # ---------------------------------------------------------------------------------- choosing
    def best(self, budget: float | None = None, metric: str = "cycles") -> pd.Series:
        """The highest-proxy point whose ``metric`` is at most ``budget`` x the dense model's (on the
        accelerator the search was given); without a budget, the highest-proxy point of the front."""
        if metric not in ("cycles", "energy_pj", "dram_bytes"):
            raise SearchError(f"best: metric must be cycles, energy_pj or dram_bytes, got {metric!r}")
        df = self.front
        if budget is not None:
            ref = self.info["dense"][metric]
            df = df[df[metric] <= budget * ref]
            if df.empty:
                raise SearchError(f"best: no point of the front has {metric} within {budget:g} x dense "
                                  f"(the front's least is {self.front[metric].min() / ref:.3f} x)")
        return df.sort_values(["proxy", metric], ascending=[False, True], kind="stable").iloc[0]

    def _index(self, index) -> int:
        if index is None and "budget_point" in self.info:
            index = self.info["budget_point"]
        if index is None:
            index = self.best(self.budget, self.info.get("metric", "cycles")).name if self.budget is not None \
                else self.best().name
        if isinstance(index, pd.Series):
            index = index.name
        if not 0 <= int(index) < len(self.assignments):
            raise SearchError(f"point {index}: the front has points 0..{len(self.assignments) - 1}")
        return int(index)

    def cost_of(self, index=None) -> tuple[HardwareCost, np.ndarray]:
        key, a = self.assignments[self._index(index)]
        return self.costs[key], a

    def apply(self, workload: Workload | None = None, index=None) -> Workload:
        """The workload masked as point ``index`` (default: the chosen / best point) says."""
        cost, a = self.cost_of(index)
        return cost.apply(a, workload)

    def masks(self, index=None) -> dict[str, np.ndarray]:
        cost, a = self.cost_of(index)
        return cost.masks(a)

    def save_masks(self, path, index=None) -> Path:
        """``{parameter name: bool tensor}`` (parameter shapes) with ``torch.save``; load with
        ``torch.load`` and apply with ``torch.nn.utils.prune.custom_from_mask``."""
        import torch
        masks = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.masks(index).items()}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(masks, tmp)
        os.replace(tmp, path)
        return path

    # ---------------------------------------------------------------------------------- files
    def save(self, path) -> Path:
        """The front as ``.csv`` or ``.parquet`` (by extension), written atomically."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise SearchError(f"--out {path}: expected a .csv or .parquet file name")
        tmp = path.with_name(path.name + ".tmp")
        if suffix == ".csv":
            self.front.to_csv(tmp, index=False)
        else:
            self.front.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def plot(self, path) -> Path:
        from .plot import plot_front
        return plot_front(self, path)
