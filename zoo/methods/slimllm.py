"""SliM-LLM (Huang et al. 2024, arXiv 2405.14917): salience-driven mixed precision per group.

Implemented: groups of ``group_size`` columns are ranked by salience (sum over the group of
w^2 / [H^-1]_jj^2); k pairs are re-allocated, the k most salient groups one bit up and the k least
salient one bit down, so the average stays at the recipe's bits exactly; k is searched to minimize
the salience-weighted round-to-nearest error (SliM-LLM's salience-determined bit allocation). Each
group is then quantized by the OBS loop (the GPTQ-based SliM-LLM variant) on a per-row asymmetric
min-max grid at its bit width, or, for 1-bit groups, binarized around the row's mean
(mean +- mean|w - mean|) as the authors' code does. Not implemented: the salience-weighted quantizer refinement (SQC).

Bits per weight: code bits equal the recipe's bits (the allocation preserves the mean). With
metadata: a 16-bit scale and zero per row and group, and 2 bits per group for its width.

Faithfulness: this is zoo's variant, not the authors' algorithm; ``zoo/fidelity.py`` says where it
differs and by how much (measured against their code), and the card and ``zoo show`` print it.
"""

from typing import Any, Literal

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class SliMLLMParams(MethodParams):
    dampening_frac: float = 0.01
    # 1-bit groups: "mean-binary" binarizes around the row mean as the authors' code does (the default);
    # "minmax" is zoo's earlier 1-bit min-max grid, which measured better in zoo's pipeline on the tiny
    # base (59.53 vs 61.38 pydoc perplexity) and stays available by name
    one_bit_grid: Literal["mean-binary", "minmax"] = "mean-binary"


SPEC = MethodSpec(
    name="slimllm",
    builder="zoo.methods.slimllm:quantize",
    title="SliM-LLM",
    paper="Huang et al. 2024, SliM-LLM: Salience-Driven Mixed-Precision Quantization for LLMs, arXiv 2405.14917",
    params=SliMLLMParams,
    weight_bits=(2, 3),
    per_channel=False,
    symmetric=False,
    formats=("fake",),
)


def binarize(x: Any, dim: int = -1) -> Any:
    """SliM-LLM's 1-bit quantizer, as its authors' code binarizes a group: mean +- mean |w - mean| per
    row (a min-max grid at 1 bit has the levels {min(0, lo), max(0, hi)}, nearly zeroing the group)."""
    from zoo.methods import obs

    mu = x.mean(dim=dim, keepdim=True)
    alpha = (x - mu).abs().mean(dim=dim, keepdim=True)
    return mu + alpha * obs.sign(x - mu)  # +1 at 0: a binarized value is never the mean itself


def group_quantize(x: Any, bits: int, dim: int = -1, one_bit_grid: str = "mean-binary") -> Any:
    from zoo.methods import obs

    return binarize(x, dim) if bits == 1 and one_bit_grid == "mean-binary" else obs.uniform(x, bits, dim=dim)


def allocate(w: Any, h: Any, bits: int, group: int, dampening: float = 0.01, one_bit_grid: str = "mean-binary") -> list[int]:
    """Bit width per column group, mean exactly ``bits``."""
    import torch

    from zoo.methods import obs

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
        alloc = [bits] * len(order)
        for g in order[:k]:
            alloc[g] = bits + 1
        for g in order[len(order) - k :] if k else []:
            alloc[g] = bits - 1
        err = sum(float(salience[g]) * cost[alloc[g]][g] for g in range(len(order)))
        if err < best_err:
            best, best_err = alloc, err
    return best


def quantize_weight(
    w: Any, h: Any, bits: int, group: int = 128, dampening: float = 0.01, one_bit_grid: str = "mean-binary"
) -> Any:
    from zoo.methods import obs
    from zoo.methods.native import Quantized

    alloc = allocate(w, h, bits, group, dampening, one_bit_grid)

    def block(w1: Any, h1: Any, first: int) -> Any:
        b = alloc[first // group]
        if b == 1 and one_bit_grid == "mean-binary":  # mean and scale fixed per row from the block's start
            mu = w1.mean(dim=1)
            alpha = (w1 - mu.unsqueeze(1)).abs().mean(dim=1)
            return lambda i, col: mu + alpha * obs.sign(col - mu)
        grid = obs.row_grid(w1, b)
        return lambda i, col: grid(col)

    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = float(sum(alloc) * group * w.shape[0])
    return Quantized(q, bits=code + len(alloc) * (w.shape[0] * 32 + 2), code_bits=code)


def quantize(ctx: BuildContext[SliMLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    bits, group = int(ctx.recipe.weights.bits), int(ctx.recipe.weights.group_size)
    scheme = {"weights": {"bits": bits, "group_size": group, "allocation": "salience pairs", "one_bit_grid": p.one_bit_grid}}
    return native.run(ctx, lambda w, h: quantize_weight(w, h, bits, group, p.dampening_frac, p.one_bit_grid), scheme)
