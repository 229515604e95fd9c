"""Bit- and cycle-exact golden model of the RTL in ``hdl/rtl``: the scoreboard of its testbenches.

``nm_dot``: every beat carries G groups of M activations and N (weight, index) pairs; a beat's sum is
``sum_g sum_j w[g, j] * a[g, idx[g, j]]`` in two's complement at the accumulator width; a dot
product is the sum of its beats up to the one with ``last``. Handshake timeline (per cycle t):
``in_ready = not out_valid or out_ready``; a beat fires when ``in_valid and in_ready``; the result
of a last beat is valid from the next cycle on and leaves when ``out_valid and out_ready``.
"""
from __future__ import annotations

from dataclasses import dataclass


def wrap(value: int, bits: int) -> int:
    """Two's-complement wrap of ``value`` to ``bits`` bits, as a signed integer."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True)
class Beat:
    act: tuple[int, ...]   # G*M signed activations, group-major
    wgt: tuple[int, ...]   # G*N signed weights
    idx: tuple[int, ...]   # G*N indices in [0, M)
    last: bool


def beat_sum(beat: Beat, n: int, m: int, aw: int = 32) -> tuple[int, bool]:
    """(sum of one beat wrapped to ``aw`` bits, malformed metadata?)."""
    groups = len(beat.wgt) // n
    total, bad = 0, False
    for g in range(groups):
        for j in range(n):
            ix = beat.idx[g * n + j]
            total += beat.wgt[g * n + j] * beat.act[g * m + ix]
            if j > 0 and ix <= beat.idx[g * n + j - 1]:
                bad = True
    return wrap(total, aw), bad


@dataclass(frozen=True)
class OutEvent:
    cycle: int      # the cycle in which out_valid and out_ready were both high
    value: int
    err: bool


def nm_dot_timeline(beats, valid, ready, n: int, m: int, aw: int = 32):
    """Run the handshake model. ``valid[t]``: the driver offers its next beat in cycle t (once
    offered, a beat stays until accepted); ``ready[t]``: the sink is ready in cycle t.

    Returns (output events, cycle of the first accepted beat, number of cycles simulated)."""
    out_valid, out_data, out_err = False, 0, False
    acc, err = 0, False
    presenting, nxt = None, 0
    events, first_in = [], None
    t = 0
    while nxt < len(beats) or presenting is not None or out_valid:
        if t >= len(valid) or t >= len(ready):
            raise ValueError(f"handshake patterns of {len(valid)} cycles ran out at cycle {t}")
        if presenting is None and nxt < len(beats) and valid[t]:
            presenting, nxt = nxt, nxt + 1
        in_ready = (not out_valid) or ready[t]
        in_fire = presenting is not None and in_ready
        out_fire = out_valid and ready[t]
        if out_fire:
            events.append(OutEvent(t, out_data, out_err))
            out_valid = False
        if in_fire:
            if first_in is None:
                first_in = t
            s, bad = beat_sum(beats[presenting], n, m, aw)
            if beats[presenting].last:
                out_data, out_err, out_valid = wrap(acc + s, aw), err or bad, True
                acc, err = 0, False
            else:
                acc, err = wrap(acc + s, aw), err or bad
            presenting = None
        t += 1
    return events, first_in, t


def compress_nm(weights, mask, n: int, m: int) -> tuple[list[int], list[int]]:
    """Compress one column (k weights and their bool mask, N:M-compliant) into N slots per group:
    kept weights in ascending index order, padded with zero weights on the lowest unused indices
    (so indices stay strictly ascending). Returns (weights, indices), each of length N x groups."""
    k = len(weights)
    out_w, out_i = [], []
    for start in range(0, k, m):
        kept = [i - start for i in range(start, min(k, start + m)) if mask[i]]
        if len(kept) > n:
            raise ValueError(f"group at k={start} keeps {len(kept)} weights, more than N={n}")
        free = [i for i in range(m) if i not in kept]
        slots = sorted(kept + free[: n - len(kept)])
        for s in slots:
            i = start + s
            out_i.append(s)
            out_w.append(int(weights[i]) if (i < k and mask[i]) else 0)
    return out_w, out_i


# ---------------------------------------------------------------------------------------- nm_array
@dataclass(frozen=True)
class ArrayFold:
    """One fold of ``nm_array``: an R x C tile of compressed weights and indices, and its stream
    rows (each R/N groups of M activations, group-major)."""

    w: tuple[tuple[int, ...], ...]     # R rows of C weights
    idx: tuple[tuple[int, ...], ...]   # R rows of C indices
    rows: tuple[tuple[int, ...], ...]  # T stream rows of (R/N) x M activations
    gsel: tuple[int, ...] | None = None  # per array row, the beat group it reads (None: row // N)

    def group_of(self, r: int, n: int) -> int:
        return r // n if self.gsel is None else self.gsel[r]


@dataclass(frozen=True)
class ArrayOut:
    cycle: int
    values: tuple[int, ...]
    last: bool


def array_row_result(fold: ArrayFold, act, n: int, m: int, aw: int) -> tuple[int, ...]:
    """Output row of one stream row: column c sums w[r][c] x act[gsel[r] * M + idx[r][c]] over rows."""
    r_count, c_count = len(fold.w), len(fold.w[0])
    base = [fold.group_of(r, n) * m for r in range(r_count)]
    return tuple(wrap(sum(fold.w[r][c] * _at(act, base[r] + fold.idx[r][c]) for r in range(r_count)), aw)
                 for c in range(c_count))


def _at(act, i: int) -> int:
    """An activation of the beat; a group select past the beat's groups reads zeros (as the RTL's mux)."""
    return act[i] if i < len(act) else 0


@dataclass(frozen=True)
class MultipassTile:
    """A dense k x C weight tile with an arbitrary mask, scheduled on an R-row N:M array.

    ``passes[g]`` slot groups of N slots serve M-group g (the most any column keeps there, at least
    one); the slot groups, in group order, fill folds of R/N. ``folds[f]`` is ``(w, idx, gsel,
    groups)``: R x C weights and indices, the group select of each array row, and the M-groups
    (in beat order) the fold's stream beat carries."""

    passes: tuple[int, ...]
    folds: tuple


def schedule_multipass(weights, mask, n: int, m: int, r: int) -> MultipassTile:
    """Compress ``weights`` (k x C) under ``mask`` into multi-pass folds of an R-row array.

    A column's kept weights of group g fill its passes in index order, N per pass; unused slots
    hold a zero weight with index 0. This is the mapping the engine costs in N:M mode: the fold
    count is ceil(sum(passes) / (R / N))."""
    import numpy as np
    weights, mask = np.asarray(weights), np.asarray(mask, dtype=bool)
    k, c = weights.shape
    if mask.shape != (k, c):
        raise ValueError(f"mask shape {mask.shape} does not match weights {weights.shape}")
    if r % n:
        raise ValueError(f"R={r} must be a multiple of N={n}")
    gr = r // n
    kg = -(-k // m)
    kept = [[[i - g * m for i in range(g * m, min(k, g * m + m)) if mask[i, col]] for col in range(c)]
            for g in range(kg)]
    passes = tuple(max(1, -(-max(len(x) for x in kept[g]) // n)) for g in range(kg))
    slot_groups = [(g, p) for g in range(kg) for p in range(passes[g])]
    folds = []
    for start in range(0, len(slot_groups), gr):
        chunk = slot_groups[start:start + gr]
        groups = tuple(dict.fromkeys(g for g, _ in chunk))
        w = [[0] * c for _ in range(r)]
        ix = [[0] * c for _ in range(r)]
        gsel = [0] * r
        for s, (g, p) in enumerate(chunk):
            for j in range(n):
                row = s * n + j
                gsel[row] = groups.index(g)
                for col in range(c):
                    mine = kept[g][col][p * n:(p + 1) * n]
                    if j < len(mine):
                        ix[row][col] = mine[j]
                        w[row][col] = int(weights[g * m + mine[j], col])
        folds.append((tuple(map(tuple, w)), tuple(map(tuple, ix)), tuple(gsel), groups))
    return MultipassTile(passes=passes, folds=tuple(folds))


def fold_beat(act_row, groups, m: int, gr: int) -> tuple[int, ...]:
    """The stream beat of one fold for one activation row (length k): its groups' M activations in
    beat order, zeros for groups past the end of k and for unused beat groups."""
    out = []
    for g in groups:
        seg = [int(v) for v in act_row[g * m:(g + 1) * m]]
        out += seg + [0] * (m - len(seg))
    return tuple(out + [0] * ((gr - len(groups)) * m))


def nm_array_timeline(folds, wl_valid, in_valid, out_ready, r: int, c: int, n: int, m: int, aw: int = 32):
    """Cycle model of ``nm_array`` (hdl/rtl/nm_array.sv) under the given handshake patterns.

    Drivers offer the next weight row / stream row in a cycle whose pattern bit is set and hold it
    until accepted. ``in_ready = adv and bank_full[cur]``, ``adv = not out_valid or out_ready``,
    ``wl_ready = not bank_full[ld] and nothing in flight uses bank ld``; an accepted stream row
    reaches the output register ``R + C - 1`` advancing edges later. Returns (output events,
    cycle of the first accepted input on either port, cycles simulated)."""
    from collections import deque
    depth = r + c - 1
    wbeats = [(f, row) for f in range(len(folds)) for row in range(r)]
    sbeats = [(f, t) for f in range(len(folds)) for t in range(len(folds[f].rows))]
    bank_full, ld_bank, cur_bank, ld_row = [False, False], 0, 0, 0
    inflight = [0, 0]
    bank_fold = [None, None]
    tags = deque([(False, False, 0, None)] * depth, maxlen=depth)
    out_valid, out_last, out_data = False, False, None
    wpres = spres = None
    wnext = snext = 0
    events, first_in, t = [], None, 0
    while wnext < len(wbeats) or snext < len(sbeats) or wpres is not None or spres is not None \
            or out_valid or any(tg[0] for tg in tags):
        if t >= min(len(wl_valid), len(in_valid), len(out_ready)):
            raise ValueError(f"handshake patterns ran out at cycle {t}")
        if wpres is None and wnext < len(wbeats) and wl_valid[t]:
            wpres, wnext = wbeats[wnext], wnext + 1
        if spres is None and snext < len(sbeats) and in_valid[t]:
            spres, snext = sbeats[snext], snext + 1
        adv = (not out_valid) or out_ready[t]
        wl_fire = wpres is not None and not bank_full[ld_bank] and inflight[ld_bank] == 0
        in_fire = spres is not None and adv and bank_full[cur_bank]
        if out_valid and out_ready[t]:
            events.append(ArrayOut(t, out_data, out_last))
        if (wl_fire or in_fire) and first_in is None:
            first_in = t
        # the clock edge
        tag_out = tags[-1]
        if adv and tag_out[0]:
            inflight[tag_out[2]] -= 1
        new_tag = (False, False, cur_bank, None)
        if in_fire:
            f, row = spres
            fold = folds[bank_fold[cur_bank]]
            assert bank_fold[cur_bank] == f, "stream row would use another fold's weights"
            last = row == len(folds[f].rows) - 1
            new_tag = (True, last, cur_bank, array_row_result(fold, folds[f].rows[row], n, m, aw))
            inflight[cur_bank] += 1
            spres = None
            if last:
                bank_full[cur_bank] = False
                cur_bank ^= 1
        if wl_fire:
            f, _ = wpres
            wpres = None
            if ld_row == r - 1:
                ld_row = 0
                bank_full[ld_bank] = True
                bank_fold[ld_bank] = f
                ld_bank ^= 1
            else:
                ld_row += 1
        if adv:
            tags.appendleft(new_tag)
            out_valid, out_last, out_data = tag_out[0], tag_out[1], tag_out[3]
        t += 1
    return events, first_in, t
