"""The results store: one SQLite file per sweep, in WAL mode, one transaction per point.

Tables:

* ``points``: one row per point: ``key`` (the hash of its full configuration), ``axes`` (JSON: the
  spec's axis names and this point's values), ``config`` (JSON), ``status`` (ok | infeasible |
  error), ``error``, the totals, the design's ceilings and FPGA use, ``elapsed_s``.
* ``layers``: per-layer rows of each ok point (the simulator's columns), for drill-down.
* ``meta``: the last spec run into the file and its axis names.
* ``superseded``: rows a later run replaced (the ``points`` columns, then ``reason`` and
  ``superseded_at``); their layer rows are dropped.

A point's row and its layer rows are written in one transaction, so a sweep killed at any moment
leaves whole points or nothing; re-running skips the finished ones (ok or infeasible) and re-runs
the rest, errors included.

One answer per point of the spec as it is now: a point's key hashes the content of every file it
was read from (:mod:`sweeps.spec`), and ``config`` lists those files with their hashes. Before a
run, :meth:`Store.supersede` moves to ``superseded`` every row that a file the spec names has
changed under, and every row whose axis values a point of the spec now has under another key (a
new sparsim version). So ``points`` never holds two rows for one set of axis values from the same
files, and ``speedup`` / ``energy_saving`` compare rows computed from the same files.
"""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from .errors import StoreError
from .evaluate import DESIGN, FPGA, LLM, TOTALS

POINT_COLUMNS = ["key", "axes", "config", "status", "error"] + TOTALS + DESIGN + FPGA + LLM + ["elapsed_s"]
FINISHED = ("ok", "infeasible")


_LAYER_COLUMNS: list[str] = []


def _layer_columns() -> list[str]:
    from simulator.columns import COLUMNS   # not simulator.engine: that imports Numba
    _LAYER_COLUMNS[:] = COLUMNS
    return list(COLUMNS)


#: types sqlite3 binds as they are (a float NaN is stored as NULL, as _py makes it)
_PLAIN = frozenset({int, float, str, type(None)})


def _py(v):
    """A value sqlite3 can bind (NumPy scalars to Python ones; NaN as NULL)."""
    t = type(v)
    if t is int or t is str or v is None:
        return v
    if t is float:
        return None if v != v else v
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class Store:
    """The only place a sweep writes. Open with a path; ``close()`` when done (or use ``with``)."""

    def __init__(self, path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such results file")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")     # whole transactions survive a killed process
            if create:
                self._create()
            else:
                self.db.execute("SELECT 1 FROM points LIMIT 1")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a sparsim results file ({e})") from None

    def _create(self):
        cols = ", ".join(f'"{c}"' + (" TEXT PRIMARY KEY" if c == "key" else "") for c in POINT_COLUMNS)
        lcols = ", ".join(f'"{c}"' for c in ["point_key", "idx"] + _layer_columns())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS points ({cols})")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS layers ({lcols}, PRIMARY KEY (point_key, idx))")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            scols = ", ".join(f'"{c}"' for c in POINT_COLUMNS + ["reason", "superseded_at"])
            self.db.execute(f"CREATE TABLE IF NOT EXISTS superseded ({scols})")
            schema = json.dumps([POINT_COLUMNS, _layer_columns()])
            row = self.db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (schema,))
            elif row[0] != schema:
                raise StoreError(f"{self.path}: written by another version of sparsim (other columns); "
                                 f"use a new --out file")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.db.close()

    def finished_keys(self) -> set[str]:
        return {k for (k,) in self.db.execute(
            f"SELECT key FROM points WHERE status IN ({','.join('?' * len(FINISHED))})", FINISHED)}

    def set_meta(self, name: str, value) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def meta(self, name: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def write(self, point, result: dict) -> None:
        """Write one point's row and its layer rows in one transaction (replacing an earlier try)."""
        row = dict(result)
        row["axes"] = json.dumps(point.axes_dict())
        row["config"] = json.dumps({**point.config(), "files": dict(point.files)}, sort_keys=True)
        values = [_py(row.get(c)) for c in POINT_COLUMNS]
        lcols = _LAYER_COLUMNS or _layer_columns()
        columns = result["layers"]      # {column: [value per layer]} (see sweeps.evaluate)
        layer_rows = ([[point.key, i, *row] for i, row in enumerate(zip(*(columns[c] for c in lcols)))]
                      if columns else [])
        if not all(_PLAIN.issuperset(map(type, row)) for row in layer_rows):
            layer_rows = [row[:2] + [_py(v) for v in row[2:]] for row in layer_rows]
        with self.db:   # commits, or rolls back on an exception
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM layers WHERE point_key = ?", (point.key,))
            self.db.execute(f"INSERT OR REPLACE INTO points VALUES ({','.join('?' * len(POINT_COLUMNS))})", values)
            if layer_rows:
                self.db.executemany(f"INSERT INTO layers VALUES ({','.join('?' * (len(lcols) + 2))})", layer_rows)


    def supersede(self, points) -> list[tuple[dict, str]]:
        """Move to ``superseded`` the rows that ``points`` (a spec's points, as it is now) replace:
        a row read from a file that ``points`` name with other content, or a row with the axis values
        of one of ``points`` under another key. Returns ``[(axes of the row, reason)]``."""
        keys = {p.key for p in points}
        axes_of = {json.dumps(p.axes_dict()): p.key for p in points}
        now = {}
        for p in points:
            now.update(p.files)
        gone: list[tuple[str, dict, str]] = []
        for key, axes, config in self.db.execute("SELECT key, axes, config FROM points"):
            if key in keys:
                continue
            try:
                files = json.loads(config).get("files") or {}
            except (TypeError, ValueError):
                files = {}
            changed = sorted(f for f, h in files.items() if f in now and now[f] != h)
            if changed:
                gone.append((key, json.loads(axes), "changed since it ran: " + ", ".join(changed)))
            elif axes in axes_of:
                gone.append((key, json.loads(axes), "the same axis values now make another configuration "
                                                   "(another sparsim version, or a store from before files "
                                                   "were keyed)"))
        if gone:
            import datetime
            at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            cols = ", ".join(f'"{c}"' for c in POINT_COLUMNS)
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for key, _, reason in gone:
                    self.db.execute(f"INSERT INTO superseded SELECT {cols}, ?, ? FROM points WHERE key = ?",
                                    (reason, at, key))
                    self.db.execute("DELETE FROM points WHERE key = ?", (key,))
                    self.db.execute("DELETE FROM layers WHERE point_key = ?", (key,))
        return [(axes, reason) for _, axes, reason in gone]


def stale_files(path) -> tuple[dict[str, int], int]:
    """``({file: points read from it}, points)`` for the files the store's points were read from that
    have changed (or gone) since, and how many points that makes: those points are out of date until
    the sweep runs again."""
    import hashlib
    with Store(path, create=False) as st:
        configs = [c for (c,) in st.db.execute("SELECT config FROM points")]
    now: dict[str, str | None] = {}
    files_out: dict[str, int] = {}
    points = 0
    for c in configs:
        try:
            files = json.loads(c).get("files") or {}
        except (TypeError, ValueError, AttributeError):
            continue
        hit = False
        for f, h in files.items():
            if f not in now:
                try:
                    now[f] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
                except OSError:
                    now[f] = None
            if now[f] != h:
                files_out[f] = files_out.get(f, 0) + 1
                hit = True
        points += hit
    return files_out, points


def stale_line(path) -> str | None:
    """One line saying which points of the store are out of date with their files, or None."""
    files, points = stale_files(path)
    if not files:
        return None
    names = ", ".join(f"{f} ({n})" for f, n in sorted(files.items()))
    return (f"warning: {path}: {points} point{'s' if points != 1 else ''} were computed from files that have "
            f"changed or gone since (file (points): {names}); run the sweep again to update them")


# ---------------------------------------------------------------------------------------------- read
def load_results(path):
    """``(points, layers)`` pandas DataFrames from a results store.

    ``points``: one row per point: one column per axis named as in the spec (``model``,
    ``accelerator``, ``sparsity``, ``compute.dataflow``, ...), then ``status``, ``cycles``,
    ``energy_pj``, ``latency_s``, ``dram_bytes``, ``utilization``, ``speedup`` (dense cycles of the
    same configuration / cycles; NaN when the sweep has no dense point for it), ``energy_saving``
    (1 - energy / dense energy), the other totals, the design's ceilings, FPGA use, ``error`` and
    ``key``. ``layers``: the per-layer rows, with ``key`` and the point's axes."""
    import pandas as pd
    with Store(path, create=False) as st:
        raw = pd.read_sql_query("SELECT * FROM points", st.db)
        layers = pd.read_sql_query("SELECT * FROM layers ORDER BY point_key, idx", st.db)
        spec_axes = st.meta("axes", [])
    axes_rows = [json.loads(a) for a in raw["axes"]]
    axes = list(spec_axes)
    for a in axes_rows:
        axes += [k for k in a if k not in axes]
    ax = pd.DataFrame([{k: _cell(a.get(k)) for k in axes} for a in axes_rows], columns=axes)
    body = raw.drop(columns=["axes", "config"])
    df = pd.concat([ax, body], axis=1)
    for col in ("cycles", "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs", "folds",
                "rows", "cols", "pes", "fpga_dsp", "fpga_bram36", "fpga_lut", "fpga_ff", "budget_dsp",
                "budget_bram36", "budget_lut", "budget_ff"):
        df[col] = df[col].astype("Int64")      # whole numbers, missing where a point did not run
    _add_speedup(df, axes)
    first = axes + ["status", "cycles", "energy_pj", "latency_s", "dram_bytes", "utilization", "speedup",
                    "energy_saving"]
    rest = [c for c in df.columns if c not in first and c not in ("error", "key")]
    df = df[first + rest + ["error", "key"]]
    df = df.sort_values(axes, key=lambda s: s.map(_sort_key), kind="stable").reset_index(drop=True)
    layers = layers.rename(columns={"point_key": "key"})
    layers = layers.merge(df[["key"] + axes], on="key", how="left")
    return df, layers


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _sort_key(v):
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _add_speedup(df, axes) -> None:
    import numpy as np
    others = [a for a in axes if a != "sparsity"]
    ident = df[others].astype(str).agg("\x1f".join, axis=1) if others else df["key"].map(lambda _: "")
    dense = df[(df.get("sparsity") == "dense") & (df["status"] == "ok")] if "sparsity" in df else df.iloc[:0]
    base_c = dict(zip(ident[dense.index], dense["cycles"]))
    base_e = dict(zip(ident[dense.index], dense["energy_pj"]))
    ok = df["status"] == "ok"
    bc = ident.map(base_c).astype(float)
    be = ident.map(base_e).astype(float)
    df["speedup"] = np.where(ok, bc / df["cycles"].astype(float), np.nan)
    df["energy_saving"] = np.where(ok, 1.0 - df["energy_pj"].astype(float) / be, np.nan)
