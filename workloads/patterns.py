"""Sparsity patterns and the masks they pick by weight magnitude.

Every pattern works on a weight in GEMM layout, ``(groups, k, n)`` (or ``(k, n)``), and returns a
boolean mask of the same shape, ``True`` where the weight is kept. Ties in magnitude are broken by
position (the earlier element along the flattened axis wins), so masks are deterministic.

Text forms (:func:`parse_pattern`): ``dense``, ``N:M`` (``2:4``), ``unstructured:D``,
``block:BHxBW:D`` and ``channel:D`` where ``D`` is the kept fraction (density) in ``(0, 1]``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import PatternError

__all__ = ["SparsityPattern", "Dense", "NM", "Unstructured", "Block", "Channel", "parse_pattern",
           "dense", "nm", "unstructured", "block", "channel"]


def _as_gemm3(weight: np.ndarray) -> tuple[np.ndarray, bool]:
    w = np.asarray(weight)
    if w.ndim == 2:
        return w[None], True
    if w.ndim != 3:
        raise PatternError(f"pattern mask: expected a GEMM-layout weight of shape (k, n) or "
                           f"(groups, k, n), got shape {w.shape}")
    return w, False


def _keep_count(density: float, total: int) -> int:
    """Number of elements a density keeps out of ``total``: round half up, so it is deterministic;
    at least one when the density is above zero (a tiny density thins a layer, it never removes it:
    a layer rounded to nothing would simulate to 0 cycles and 0 energy)."""
    keep = int(math.floor(density * total + 0.5))
    return max(keep, 1) if density > 0 and total > 0 else keep


def _top_flat(scores: np.ndarray, keep: int) -> np.ndarray:
    """Boolean mask over ``scores.ravel()`` keeping the ``keep`` largest, earlier index on ties."""
    flat = scores.ravel()
    out = np.zeros(flat.shape, dtype=bool)
    if keep >= flat.size:
        out[:] = True
    elif keep > 0:
        if np.isnan(flat).any():   # NaN sorts last: the general (slower) path
            out[np.argsort(-flat, kind="stable")[:keep]] = True
        else:
            # the keep-th largest value; everything above it, then its ties in index order
            cut = np.partition(flat, flat.size - keep)[flat.size - keep]
            np.greater(flat, cut, out=out)
            ties = np.flatnonzero(flat == cut)[:keep - int(np.count_nonzero(out))]
            out[ties] = True
    return out.reshape(scores.shape)


def _group_rank(mag: np.ndarray) -> np.ndarray:
    """For ``(g, groups, M, n)`` magnitudes: each element's place in its group of M, largest first,
    the earlier index first on ties (what a stable descending sort along axis 2 gives)."""
    m = mag.shape[2]
    if m > 16 or np.isnan(mag).any():   # NaN sorts last; large groups: sort
        order = np.argsort(-mag, axis=2, kind="stable")
        rank = np.empty(mag.shape, dtype=np.int64)
        np.put_along_axis(rank, order, np.arange(m).reshape(1, 1, m, 1), axis=2)
        return rank
    rank = np.zeros(mag.shape, dtype=np.int8)
    for i in range(m):
        mi, ri = mag[:, :, i, :], rank[:, :, i, :]
        for j in range(m):
            if j != i:   # larger ones, and equal ones earlier, come first
                ri += (mag[:, :, j, :] >= mi) if j < i else (mag[:, :, j, :] > mi)
    return rank


def _density_text(d: float) -> str:
    """The shortest text that parses back to the same float (``0.5``, ``1``, ``0.3982634...``): a
    pattern's text form picks the same mask as the pattern (``:g`` kept 6 digits, and a density such
    as ``939621 / 2359296`` came back one weight short)."""
    text = repr(float(d))
    return text[:-2] if text.endswith(".0") else text


def _check_density(density: float, what: str) -> float:
    try:
        d = float(density)
    except (TypeError, ValueError):
        raise PatternError(f"{what}: density must be a number in (0, 1], got {density!r}") from None
    if not (0.0 < d <= 1.0) or math.isnan(d):
        raise PatternError(f"{what}: density must be in (0, 1], got {density!r}")
    return d


class SparsityPattern:
    """Base class. Subclasses are frozen dataclasses with a ``mask`` method and a text form."""

    name: str = "pattern"

    def mask(self, weight: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def density(self) -> float:
        """Nominal fraction of weights kept."""
        raise NotImplementedError  # pragma: no cover

    def __str__(self) -> str:  # pragma: no cover - overridden
        return self.name


@dataclass(frozen=True)
class Dense(SparsityPattern):
    name = "dense"

    def mask(self, weight):
        w, squeeze = _as_gemm3(weight)
        m = np.ones(w.shape, dtype=bool)
        return m[0] if squeeze else m

    @property
    def density(self):
        return 1.0

    def __str__(self):
        return "dense"


@dataclass(frozen=True)
class NM(SparsityPattern):
    """At most ``n`` nonzeros in every group of ``m`` consecutive weights along the reduction axis.

    When ``m`` does not divide ``k`` the last group of each column is shorter; it keeps at most
    ``n`` of its elements.
    """

    n: int
    m: int
    name = "nm"

    def __post_init__(self):
        for field, v in (("N", self.n), ("M", self.m)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise PatternError(f"N:M pattern: {field} must be an integer, got {v!r}")
        if self.m < 1:
            raise PatternError(f"N:M pattern: M must be >= 1, got {self.n}:{self.m}")
        if not (1 <= self.n <= self.m):
            raise PatternError(f"N:M pattern: N must be in 1..M, got {self.n}:{self.m}")

    @property
    def density(self):
        return self.n / self.m

    def mask(self, weight):
        w, squeeze = _as_gemm3(weight)
        g, k, n = w.shape
        groups = -(-k // self.m)
        pad = groups * self.m - k
        mag = np.abs(w.astype(np.float64, copy=False))
        if pad:
            # Padding can never be picked over a real element: it scores below every magnitude.
            mag = np.concatenate([mag, np.full((g, pad, n), -1.0)], axis=1)
        mag = mag.reshape(g, groups, self.m, n)
        # Rank inside each group; the earlier index wins ties (a stable sort's order).
        keep = _group_rank(mag) < self.n
        keep = keep.reshape(g, groups * self.m, n)[:, :k, :]
        return keep[0] if squeeze else keep

    def __str__(self):
        return f"{self.n}:{self.m}"


@dataclass(frozen=True)
class Unstructured(SparsityPattern):
    """Keep the ``round(density * size)`` largest-magnitude weights of the whole layer."""

    density_: float
    name = "unstructured"

    def __post_init__(self):
        object.__setattr__(self, "density_", _check_density(self.density_, "unstructured pattern"))

    @property
    def density(self):
        return self.density_

    def mask(self, weight):
        w, squeeze = _as_gemm3(weight)
        m = _top_flat(np.abs(w.astype(np.float64, copy=False)), _keep_count(self.density_, w.size))
        return m[0] if squeeze else m

    def __str__(self):
        return f"unstructured:{_density_text(self.density_)}"


@dataclass(frozen=True)
class Block(SparsityPattern):
    """Keep whole ``bh x bw`` blocks (``bh`` along the reduction axis, ``bw`` along the outputs).

    Blocks are scored by mean magnitude (edge blocks may be smaller); the top
    ``round(density * blocks)`` blocks of the layer are kept.
    """

    bh: int
    bw: int
    density_: float
    name = "block"

    def __post_init__(self):
        for field, v in (("height", self.bh), ("width", self.bw)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise PatternError(f"block pattern: block {field} must be a positive integer, got {v!r}")
        object.__setattr__(self, "density_", _check_density(self.density_, "block pattern"))

    @property
    def density(self):
        return self.density_

    def mask(self, weight):
        w, squeeze = _as_gemm3(weight)
        g, k, n = w.shape
        bk, bn = -(-k // self.bh), -(-n // self.bw)
        mag = np.zeros((g, bk * self.bh, bn * self.bw))
        mag[:, :k, :n] = np.abs(w)
        cnt = np.zeros_like(mag)
        cnt[:, :k, :n] = 1.0
        blk_sum = mag.reshape(g, bk, self.bh, bn, self.bw).sum(axis=(2, 4))
        blk_cnt = cnt.reshape(g, bk, self.bh, bn, self.bw).sum(axis=(2, 4))
        keep_blk = _top_flat(blk_sum / blk_cnt, _keep_count(self.density_, blk_sum.size))
        keep = np.repeat(np.repeat(keep_blk, self.bh, axis=1), self.bw, axis=2)[:, :k, :n]
        return keep[0] if squeeze else keep

    def __str__(self):
        return f"block:{self.bh}x{self.bw}:{_density_text(self.density_)}"


@dataclass(frozen=True)
class Channel(SparsityPattern):
    """Keep whole output channels (GEMM columns) by L2 norm: ``round(density * groups * n)`` of them."""

    density_: float
    name = "channel"

    def __post_init__(self):
        object.__setattr__(self, "density_", _check_density(self.density_, "channel pattern"))

    @property
    def density(self):
        return self.density_

    def mask(self, weight):
        w, squeeze = _as_gemm3(weight)
        norms = np.sqrt(np.square(w.astype(np.float64)).sum(axis=1))  # (g, n)
        keep_col = _top_flat(norms, _keep_count(self.density_, norms.size))
        keep = np.broadcast_to(keep_col[:, None, :], w.shape).copy()
        return keep[0] if squeeze else keep

    def __str__(self):
        return f"channel:{_density_text(self.density_)}"


# Short constructors, as DESIGN.md names them.
def dense() -> Dense:
    return Dense()


def nm(n: int, m: int) -> NM:
    return NM(n, m)


def unstructured(density: float) -> Unstructured:
    return Unstructured(density)


def block(bh: int, bw: int, density: float) -> Block:
    return Block(bh, bw, density)


def channel(density: float) -> Channel:
    return Channel(density)


_NM_RE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*$")
_BLOCK_RE = re.compile(r"^\s*block\s*:\s*(\d+)\s*x\s*(\d+)\s*:\s*([^:]+)$", re.I)

_FORMS = "'dense', 'N:M' (e.g. '2:4'), 'unstructured:D', 'block:BHxBW:D' or 'channel:D' with D in (0, 1]"


def parse_pattern(text) -> SparsityPattern:
    """Parse a pattern's text form (see module docstring). Patterns pass through unchanged."""
    try:
        return _parse(text)
    except PatternError as e:
        if isinstance(text, str) and text not in str(e):
            raise PatternError(f"sparsity pattern '{text}': {e}") from None
        raise


def _parse(text) -> SparsityPattern:
    if isinstance(text, SparsityPattern):
        return text
    if not isinstance(text, str):
        raise PatternError(f"sparsity pattern: expected a string such as {_FORMS}, got {text!r}")
    s = text.strip()
    low = s.lower()
    if low == "dense":
        return Dense()
    mo = _NM_RE.match(s)
    if mo:
        n, m = int(mo.group(1)), int(mo.group(2))
        if m < 1 or not (1 <= n <= m):
            raise PatternError(f"sparsity pattern '{text}': N:M needs 1 <= N <= M, got N={n}, M={m}")
        return NM(n, m)
    mo = _BLOCK_RE.match(s)
    if mo:
        return Block(int(mo.group(1)), int(mo.group(2)), _parse_density(mo.group(3), text))
    if ":" in low:
        kind, _, rest = low.partition(":")
        kind = kind.strip()
        if kind == "unstructured":
            return Unstructured(_parse_density(rest, text))
        if kind == "channel":
            return Channel(_parse_density(rest, text))
    raise PatternError(f"sparsity pattern '{text}': expected one of {_FORMS}")


def _parse_density(s: str, text: str) -> float:
    try:
        d = float(s)
    except ValueError:
        raise PatternError(f"sparsity pattern '{text}': density '{s.strip()}' is not a number in (0, 1]") from None
    if not (0.0 < d <= 1.0):
        raise PatternError(f"sparsity pattern '{text}': density must be in (0, 1], got {d:g}")
    return d
