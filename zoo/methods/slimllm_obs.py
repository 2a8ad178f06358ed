"""zoo's own pieces of SliM-LLM (``zoo.methods.slimllm`` holds the authors' algorithm, the default): the
second-order score of k (``score: second-order``) and ``variant: zoo-obs``, zoo's earlier design, kept by name
and unchanged.

The same pairs as the authors' (k least salient groups one bit down, k most salient one bit up), ranked by the
salience from zoo's damped Hessian (zoo's per-token H, ``zoo.methods.native``), k in 0 .. n/2 searched on the
salience-weighted round-to-nearest error, no SQC (per-row min-max grids), and 1-bit groups binarized as
mu + mean|w - mu| sign(w - mu) (``one_bit_grid: mean-binary``, the default) or on a 1-bit min-max grid
(``one_bit_grid: minmax``); dead inputs zeroed as GPTQ does.
"""

from __future__ import annotations

from typing import Any


def binarize(x: Any, dim: int = -1) -> Any:
    """zoo-obs's 1-bit quantizer (``one_bit_grid: mean-binary``): mean +- mean |w - mean| per row (a min-max
    grid at 1 bit has the levels {min(0, lo), max(0, hi)}, nearly zeroing the group). The authors' code scales
    by mean |w| instead (``slimllm.binarize_authors``)."""
    from zoo.methods import obs

    mu = x.mean(dim=dim, keepdim=True)
    alpha = (x - mu).abs().mean(dim=dim, keepdim=True)
    return mu + alpha * obs.sign(x - mu)  # +1 at 0: a binarized value is never the mean itself


def group_quantize(x: Any, bits: int, dim: int = -1, one_bit_grid: str = "mean-binary") -> Any:
    from zoo.methods import obs

    return binarize(x, dim) if bits == 1 and one_bit_grid == "mean-binary" else obs.uniform(x, bits, dim=dim)


def allocate(w: Any, h: Any, bits: int, group: int, dampening: float, one_bit_grid: str) -> list[int]:
    import torch

    from zoo.methods import obs
    from zoo.methods.slimllm import pairs

    hinv = obs.inverse_hessian_factor(h, dampening)
    salience = (w**2 / torch.diag(hinv).unsqueeze(0) ** 2).view(w.shape[0], -1, group).sum(dim=(0, 2))
    order = torch.argsort(salience, descending=True).tolist()
    groups = w.view(w.shape[0], -1, group)
    cost = {
        b: [
            float(((groups[:, g] - group_quantize(groups[:, g], b, dim=1, one_bit_grid=one_bit_grid)) ** 2).sum())
            for g in range(len(order))
        ]
        for b in (bits - 1, bits, bits + 1)
    }
    best, best_err = [bits] * len(order), float("inf")
    for k in range(len(order) // 2 + 1):
        alloc = pairs(salience, k, bits)
        err = sum(float(salience[g]) * cost[alloc[g]][g] for g in range(len(order)))
        if err < best_err:
            best, best_err = alloc, err
    return best


def quantize(
    w: Any, h: Any, bits: int, group: int, dampening: float, one_bit_grid: str, grids: dict[int, Any] | None = None
) -> tuple[Any, list[int]]:
    """The dequantized weight and its allocation; ``grids`` receives each gridded group's (scale, zero) per row."""
    from zoo.methods import obs

    alloc = allocate(w, h, bits, group, dampening, one_bit_grid)

    def block(w1: Any, h1: Any, first: int) -> Any:
        b = alloc[first // group]
        if b == 1 and one_bit_grid == "mean-binary":  # mean and scale fixed per row from the block's start
            mu = w1.mean(dim=1)
            alpha = (w1 - mu.unsqueeze(1)).abs().mean(dim=1)
            return lambda i, col: mu + alpha * obs.sign(col - mu)
        kept: list[Any] = []
        grid = obs.row_grid(w1, b, kept)
        if grids is not None:
            grids[first // group] = kept[0]
        return lambda i, col: grid(col)

    return obs.quantize(w, h, block, block_size=group, dampening=dampening), alloc


def output_scores(w: Any, h: Any, bits: int, group: int, salience: Any) -> list[float]:
    """For each candidate k: the output error tr(C dW H dW^T C) of rounding every group at its allocated width,
    C removing each token's mean over output channels (the KL's second-order term at a uniform softmax).

    The error is a sum over pairs of groups, so it is assembled from per-width, per-group-pair terms (three
    matrix products in all, whatever the number of k)."""
    import torch

    from zoo.methods import obs
    from zoo.methods.slimllm import _spans, binarize_authors, candidates, pairs

    spans = _spans(w.shape[1], group)
    widths = (bits - 1, bits, bits + 1)
    deltas = []
    for b in widths:
        d = torch.cat([(binarize_authors(w[:, a:e]) if b == 1 else obs.uniform(w[:, a:e], b, dim=1)) - w[:, a:e]
                       for a, e in spans], dim=1)  # fmt: skip
        deltas.append(d - d.mean(dim=0, keepdim=True))
    n = len(spans)

    def per_group(prod: Any) -> Any:  # sum of [rows, cols] over each group of columns
        if w.shape[1] % group == 0:
            return prod.view(prod.shape[0], n, group).sum(dim=(0, 2))
        return torch.stack([prod[:, a:e].sum() for a, e in spans])

    terms = torch.zeros(3, 3, n, n, dtype=torch.float64, device=w.device)  # [width g, width g', g, g']
    for i, d in enumerate(deltas):
        for g, (a, e) in enumerate(spans):
            left = d[:, a:e] @ h[a:e, :]
            for j, d2 in enumerate(deltas):
                terms[i, j, g] = per_group(left * d2).double()
    scores = []
    index = torch.arange(n, device=w.device)
    for k in candidates(n):
        level = torch.tensor([b - bits + 1 for b in pairs(salience, k, bits)], device=w.device)
        scores.append(float(terms[level[:, None], level[None, :], index[:, None], index[None, :]].sum()))
    return scores
