"""One-shot pruners of one weight matrix: magnitude, Wanda and SparseGPT.

Every function takes the weight as ``W`` of shape ``(out, in)`` (``nn.Linear``'s layout; a
``transformers`` ``Conv1D`` weight is transposed by the caller) and a pattern that is
``dense``, ``N:M`` along the input dimension, or ``unstructured:D`` (D = kept fraction), and
returns ``(new weight, mask)`` with zeros in place.

* **magnitude**: keep the largest ``|W|`` (N:M: in each group of M inputs of a row; unstructured:
  over the whole layer, the layer-wise magnitude baseline of the SparseGPT and Wanda papers).
* **Wanda** (Sun et al., "A Simple and Effective Pruning Approach for Large Language Models",
  ICLR 2024): score ``|W_ij| * ||X_j||_2`` with ``X_j`` the j-th input feature over the calibration
  tokens; unstructured compares within each output row (the paper's per-output groups), N:M within
  each group of M inputs. No weight update.
* **SparseGPT** (Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
  One-Shot", ICML 2023): the row-wise OBS update with the calibration Hessian ``H = 2 X Xᵀ / n``,
  dampened by ``percdamp`` x its mean diagonal, processed in column blocks of ``blocksize`` through
  the upper Cholesky factor of ``H⁻¹``; masks chosen by ``w² / [H⁻¹]_jj²`` (unstructured: per column
  block, "adaptive mask selection"; N:M: per group of M columns) and the pruning error of each
  column spread onto the columns not yet processed.

A candidate may also store its kept weights at fewer bits (``int8``, ``int4``, ``2:4+int4``; see
:func:`parse_candidate`): symmetric round-to-nearest integers with one scale per row and group of
:data:`QUANT_GROUP` inputs (:func:`fake_quant`; the storage :func:`workloads.quant.weight_quant`
costs). SparseGPT quantizes inside its update, as its paper's joint sparsify-and-quantize variant
(and GPTQ) do, so each column's rounding error is spread onto the columns not yet processed; Wanda
and magnitude round after pruning. The weights stay float tensors holding the dequantized values
("fake quantization"): a ``transformers`` folder keeps them as they are, and the bits go into the
report and the recipe.
"""
from __future__ import annotations

import torch

from workloads import NM, Dense, SparsityPattern, Unstructured

from ..errors import SearchError

METHODS = ("magnitude", "wanda", "sparsegpt")
#: Inputs that share one quantization scale (per row), and the group size the cost tables use
#: (:func:`workloads.quant.weight_quant`). 64, not AWQ's usual 128: llmcompressor (compressed-tensors)
#: refuses a group size that does not divide a layer's input dimension, and code_lm's is 192.
QUANT_GROUP = 64
#: Weight bits a candidate may name (16: unquantized).
CANDIDATE_BITS = (16, 8, 4)


def parse_candidate(text, where: str = "--candidates") -> tuple[SparsityPattern, int]:
    """``PATTERN``, ``intB`` (dense at B bits) or ``PATTERN+intB`` -> ``(pattern, bits)`` (bits 16:
    unquantized). ``B`` is 8 or 4."""
    from workloads import parse_pattern
    if isinstance(text, SparsityPattern):
        return text, 16
    t = str(text).strip()
    head, plus, tail = t.partition("+")
    if not plus and head.startswith("int"):
        head, tail, plus = "dense", head, "+"
    bits = 16
    if plus:
        if not tail.startswith("int") or not tail[3:].isdigit() or int(tail[3:]) not in CANDIDATE_BITS[1:]:
            raise SearchError(f"{where} {t}: weight bits must be int8 or int4 (as in 2:4+int4), got {tail!r}")
        bits = int(tail[3:])
    try:
        return parse_pattern(head), bits
    except ValueError as e:
        raise SearchError(f"{where} {t}: {e}") from None


def candidate_name(pattern: SparsityPattern, bits: int = 16) -> str:
    """The canonical text of a candidate: ``str(pattern)``, ``intB`` or ``PATTERN+intB``."""
    if bits == 16:
        return str(pattern)
    return f"int{bits}" if isinstance(pattern, Dense) else f"{pattern}+int{bits}"


def quant_scales(W: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-(row, column) scales of symmetric ``bits``-bit integers: each row's group of
    :data:`QUANT_GROUP` columns shares ``max |w| / (2^(bits-1) - 1)`` (1 where the group is all zero)."""
    rows, cols = W.shape
    qmax = 2 ** (bits - 1) - 1
    out = torch.empty_like(W)
    for g in range(0, cols, QUANT_GROUP):
        s = W[:, g:g + QUANT_GROUP].abs().amax(dim=1, keepdim=True) / qmax
        out[:, g:g + QUANT_GROUP] = torch.where(s > 0, s, torch.ones_like(s))
    return out


def _round(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    qmax = 2 ** (bits - 1) - 1
    return torch.clamp(torch.round(w / scale), -qmax - 1, qmax) * scale


def fake_quant(W: torch.Tensor, bits: int) -> torch.Tensor:
    """``W`` rounded to symmetric ``bits``-bit integers with per-(row, group) scales, dequantized;
    zeros stay zero. ``bits`` 16: ``W`` unchanged."""
    if bits >= 16:
        return W
    return _round(W, quant_scales(W, bits), bits)


def check_pattern(pattern: SparsityPattern, in_features: int, where: str) -> None:
    """Refuse a pattern the pruners do not apply, or an N:M whose M does not divide the input dimension."""
    if isinstance(pattern, NM):
        if in_features % pattern.m:
            raise SearchError(f"{where}: {pattern} needs the input dimension ({in_features}) to be a multiple of "
                              f"M = {pattern.m}")
    elif not isinstance(pattern, (Dense, Unstructured)):
        raise SearchError(f"{where}: pattern {pattern} is not one the LLM pruners apply (dense, N:M, "
                          f"unstructured:D)")


def keep_nm(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` largest of every ``m`` consecutive entries along the last axis (ties: earlier wins)."""
    rows, cols = scores.shape
    g = scores.reshape(rows, cols // m, m)
    idx = torch.topk(g, n, dim=-1, largest=True, sorted=False).indices
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def keep_top(scores: torch.Tensor, density: float, per_row: bool) -> torch.Tensor:
    """Keep ``round(density x size)`` largest scores, over the whole tensor or in each row."""
    if per_row:
        k = int(density * scores.shape[1] + 0.5)
        idx = torch.topk(scores, k, dim=1, largest=True, sorted=False).indices
        return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, True)
    flat = scores.reshape(-1)
    k = int(density * flat.numel() + 0.5)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, k, largest=True, sorted=False).indices] = True
    return mask.reshape(scores.shape)


def score_mask(scores: torch.Tensor, pattern: SparsityPattern, per_row: bool) -> torch.Tensor:
    if isinstance(pattern, Dense):
        return torch.ones_like(scores, dtype=torch.bool)
    if isinstance(pattern, NM):
        return keep_nm(scores, pattern.n, pattern.m)
    return keep_top(scores, pattern.density, per_row)


def magnitude(W: torch.Tensor, pattern: SparsityPattern, per_row: bool = False):
    """``per_row``: unstructured compares within each output row instead of the whole layer."""
    mask = score_mask(W.abs(), pattern, per_row=per_row)
    return W * mask, mask


def wanda(W: torch.Tensor, pattern: SparsityPattern, sq_norm: torch.Tensor, per_row: bool = True):
    """``sq_norm``: sum over calibration tokens of each input feature squared, shape ``(in,)``.
    ``per_row``: unstructured compares within each output row (the paper's choice), else over the layer."""
    scores = W.abs() * torch.sqrt(sq_norm.to(W.dtype)).reshape(1, -1)
    mask = score_mask(scores, pattern, per_row=per_row)
    return W * mask, mask


def sparsegpt(W: torch.Tensor, pattern: SparsityPattern, H: torch.Tensor, blocksize: int = 128,
              percdamp: float = 0.01, bits: int = 16):
    """``H``: the calibration Hessian ``2 X Xᵀ / n`` of the layer's inputs, ``(in, in)``. ``bits`` < 16:
    the kept weights are also rounded (scales per row and group of :data:`QUANT_GROUP`, taken from the
    updated weights when the group starts, as GPTQ does), inside the update."""
    if isinstance(pattern, Dense) and bits >= 16:
        return W.clone(), torch.ones_like(W, dtype=torch.bool)
    W = W.clone().double()
    H = H.clone().double()
    rows, cols = W.shape
    dead = torch.diag(H) == 0          # inputs that were always zero carry no information
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    damp = percdamp * torch.mean(torch.diag(H))
    H += damp * torch.eye(cols, dtype=H.dtype)
    try:
        L = torch.linalg.cholesky(H)
        Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    except RuntimeError as e:        # a Hessian dampening cannot make positive definite
        raise SearchError(f"sparsegpt: the calibration Hessian is not positive definite after dampening "
                          f"{percdamp:g} ({e}); use more calibration tokens or a larger percdamp") from None
    nm = isinstance(pattern, NM)
    if nm and blocksize % pattern.m:
        blocksize = max(pattern.m, blocksize - blocksize % pattern.m)
    quant = bits < 16
    if quant and QUANT_GROUP % blocksize and blocksize % QUANT_GROUP:
        blocksize = QUANT_GROUP
    scale = None
    mask = torch.ones_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diag(Hinv1)
        if isinstance(pattern, Unstructured):
            # adaptive mask selection: the block's (rows x width) smallest w² / d² go
            keep = keep_top(W1 ** 2 / d.reshape(1, -1) ** 2, pattern.density, per_row=False)
        else:
            keep = torch.ones_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            w = W1[:, i]
            if nm and i % pattern.m == 0:
                tmp = W1[:, i:i + pattern.m] ** 2 / d[i:i + pattern.m].reshape(1, -1) ** 2
                keep[:, i:i + pattern.m] = keep_nm(tmp, pattern.n, pattern.m)
            q = w * keep[:, i]
            if quant:
                if (i1 + i) % QUANT_GROUP == 0:
                    g = W[:, i1 + i:i1 + i + QUANT_GROUP].clone()
                    g[:, :min(QUANT_GROUP, i2 - i1 - i)] = W1[:, i:i + QUANT_GROUP]
                    scale = quant_scales(g, bits)[:, 0]
                q = _round(q, scale, bits)
            Q1[:, i] = q
            err = (w - q) / d[i]
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        mask[:, i1:i2] = keep
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W.float() * mask, mask


def prune_weight(W: torch.Tensor, pattern: SparsityPattern, method: str, stats=None, bits: int = 16):
    """Dispatch: ``stats`` is the layer's :class:`search.llm.model.InputStats` (None for magnitude);
    ``bits`` < 16 also rounds the kept weights (see the module docstring)."""
    if method == "sparsegpt":
        return sparsegpt(W, pattern, stats.hessian(), bits=bits)
    if method == "magnitude":
        w, m = magnitude(W, pattern)
    elif method == "wanda":
        w, m = wanda(W, pattern, stats.sq_norm)
    else:
        raise SearchError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    return fake_quant(w, bits), m
