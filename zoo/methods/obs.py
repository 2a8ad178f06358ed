"""The optimal-brain-surgeon rounding loop GPTQ made practical, shared by zoo's own methods.

Columns are quantized left to right; each column's rounding error, scaled by the inverse Hessian's
Cholesky factor, is pushed onto the columns not yet quantized (LDLQ in QuIP's terms is the same
update). A method supplies ``block_quantizer``: called at the start of every block of columns with
the block's current weights and inverse-Hessian block, it returns the function that quantizes one
column of that block, so per-block choices (salient masks, split points, group scales) see the
weights as GPTQ has updated them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ColumnFn = Callable[[int, Any], Any]  # (column index within block, column [out]) -> quantized column
BlockFn = Callable[[Any, Any, int], ColumnFn]  # (block weights [out, b], Hinv block [b, b], first column) -> ColumnFn


def damped(h: Any, dampening: float) -> Any:
    """A copy of H with dead inputs made harmless (diagonal 1) and GPTQ's dampening added."""
    import torch

    h = h.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    return h + dampening * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], device=h.device)


def inverse_hessian_factor(h: Any, dampening: float) -> Any:
    """Upper Cholesky factor of H^-1 after GPTQ's dampening (and dead inputs made harmless)."""
    import torch

    hinv = torch.cholesky_inverse(torch.linalg.cholesky(damped(h, dampening)))
    return torch.linalg.cholesky(hinv, upper=True)


def quantize(w: Any, h: Any, block_quantizer: BlockFn, block_size: int = 128, dampening: float = 0.01) -> Any:
    import torch

    w = w.clone().float()
    dead = torch.diag(h) == 0
    w[:, dead] = 0
    hinv = inverse_hessian_factor(h, dampening)
    q = torch.zeros_like(w)
    cols = w.shape[1]
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1, h1 = w[:, i1:i2].clone(), hinv[i1:i2, i1:i2]
        err1 = torch.zeros_like(w1)
        column = block_quantizer(w1, h1, i1)
        for i in range(i2 - i1):
            col = w1[:, i]
            qc = column(i, col)
            q[:, i1 + i] = qc
            e = (col - qc) / h1[i, i]
            w1[:, i:] -= e.unsqueeze(1) @ h1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return q


def _grid(x: Any, bits: int, dim: int) -> tuple[Any, Any, int]:
    """Scale and zero point of the asymmetric min-max grid along ``dim`` (the range always holds 0)."""
    lo, hi = x.amin(dim=dim, keepdim=True).clamp(max=0), x.amax(dim=dim, keepdim=True).clamp(min=0)
    top = 2**bits - 1
    scale = ((hi - lo) / top).clamp(min=1e-8)
    return scale, (-lo / scale).round(), top


def uniform(x: Any, bits: int, dim: int = -1) -> Any:
    """Asymmetric min-max round-to-nearest along ``dim`` (the study's RTN grid)."""
    scale, zero, top = _grid(x, bits, dim)
    return ((x / scale).round() + zero).clamp(0, top).sub(zero).mul(scale)


def row_grid(w: Any, bits: int, keep: list[Any] | None = None) -> Callable[[Any], Any]:
    """Round a column onto the per-row min-max grid fixed by ``w`` [rows, cols] (OBS loops round
    column by column, so the grid is set once from the weights the block starts with). ``keep`` receives
    (scale, zero) per row, for the packed checkpoint (``zoo.packed``)."""
    scale, zero, top = _grid(w, bits, dim=1)
    scale, zero = scale.squeeze(1), zero.squeeze(1)
    if keep is not None:
        keep.append((scale, zero))
    return lambda col: ((col / scale).round() + zero).clamp(0, top).sub(zero).mul(scale)


def entropy_bits(count: int, total: int) -> float:
    """Bits to store which ``count`` of ``total`` positions are marked (an ideally coded bitmap)."""
    import math

    if count in (0, total):
        return 0.0
    p = count / total
    return total * -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def sign(x: Any) -> Any:
    """+1 / -1 (zero maps to +1, so binarized values never collapse to 0)."""
    import torch

    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
