"""SliM-LLM (Huang et al. 2024, arXiv 2405.14917): salience-driven mixed precision per group of columns.

``variant: authors`` (the default) is the algorithm as the authors' code runs it (Aaronhuang-778/SliM-LLM,
``slim-llm/run.py MODEL wikitext2 2bit --groupsize 128``, the GPTQ-based SliM-LLM):

- Salience-determined bit allocation (SBA). A group's salience is the sum over its weights of
  w^2 / [U]_jj^2 (U the upper Cholesky factor of H^-1). Groups are ranked by it; k pairs move, the k least
  salient groups one bit down and the k most salient one bit up, so the mean stays at the recipe's bits. k is
  searched over 1 .. n/2 - 1 (n groups), each candidate quantized by plain per-row min-max rounding (1-bit
  groups binarized as below) from the weights as they came, and scored on the layer's output; this ranking
  uses H + 0.01 I undamped, as their salience step does. The chosen k is then applied to a ranking recomputed
  with the damped Hessian GPTQ uses.
- Salience-weighted quantizer calibration (SQC). For every group of 2 bits or more, from the weights as GPTQ's
  compensation has left them, the per-row min-max range is scaled by each of 101 factors in [0.9, 1.1]
  (1, then 50 steps up, then 50 down) and each row keeps the first factor minimizing sum |Q(w) - w|^2.4, the
  error of the group's salient elements weighted by ``lambda_salience`` (salient: w^2 / [U]_jj^2 at or above
  the least of the group's values more than 2 standard deviations from their mean). The authors' default
  weight is 1, under which the salience weighting has no effect, so with the defaults SQC is this range
  search alone. (Their code also clusters salience with k-means, ``utils/bit_means.py``; nothing calls it.)
- 1-bit groups: mu + alpha sign(w - mu) per row, mu the row's mean and alpha its mean |w| (not the mean
  deviation from mu) over the group, fixed from the group's weights where the OBS loop starts the group.
- Columns are quantized by the OBS loop (``zoo.methods.obs``), one group per block, as their GPTQ loop does.

Also as their code runs, and kept: its salience step adds 0.01 to H's diagonal in place before the 1%
dampening, so the dampening sees it and no input counts as dead (dead columns are not zeroed); and a group
one bit below the recipe's that comes before, in column order, every group at or above it is fitted with a
fixed mid-range zero point ((2^b) / 2), because the quantizer's ``sym`` flag is only switched off by the first
group at or above the recipe's bits. At W2 this touches nothing (those groups are 1-bit), at W3 it can.

What differs, and why:

- The score of a candidate k. The authors compute KL(softmax(X Wq^T) || softmax(X W^T)) over each calibration
  token's output channels, summed over tokens: it needs the layer's inputs X, and zoo's per-Linear function
  receives only W and H = 2/n X^T X (``zoo.methods.native``). zoo scores k by the KL's second-order expansion
  at a uniform softmax, which needs only H: the output error with each token's mean over output channels
  removed (softmax ignores that shift), tr(C dW H dW^T C), C = I - 11^T/m over the m output rows. Where a
  layer's softmax over its channels is far from uniform, the authors' choice of k can differ. On the parity
  pair (1024 inputs, 8 groups) it picks their k at W2 and W3 (tests/test_parity.py); on the tiny base's four
  768-wide down_proj, fed their 16-bit inputs, in 7 of 8 cases (W2 and W3), the eighth a near tie (their two
  KLs 0.2% apart).
- Layers of 2 or 3 groups. The authors' range 1 .. n/2 - 1 is then empty and their code stops (the minimum of
  an empty list, ``slim_gptq.py``); neither of their bounds can hold, so zoo lets the same score choose
  between no pair (k = 0) and the one pair there is (k = 1). A single group stays at the recipe's bits. The
  tiny base's 256-wide Linears are of this kind (the score keeps all 24 uniform; forcing k = 1 measured 61.26
  pydoc perplexity against 58.13); LLaMA-3-8B's and 70B's Linears have 32 groups or more.

``variant: zoo-obs`` is zoo's earlier design, kept by name: the same pairs ranked by the salience from zoo's
damped Hessian, k in 0 .. n/2 searched on the salience-weighted round-to-nearest error, no SQC (per-row
min-max grids), and 1-bit groups binarized as mu + mean|w - mu| sign(w - mu) (``one_bit_grid: mean-binary``,
the default) or on a 1-bit min-max grid (``one_bit_grid: minmax``); dead inputs zeroed as GPTQ does.

Not implemented: SliM-LLM+ (their ``slim-llm-plus``, OmniQuant-based, with learned clipping), and their
AutoGPTQ fork's packed mixed-precision format: zoo saves the dequantized weights (format "fake").

Bits per weight: code bits equal the recipe's bits (the allocation preserves the mean). With metadata: a
16-bit scale and zero (1-bit groups: mean and alpha) per row and group, and 2 bits per group for its width.

Parity: ``tests/test_parity.py`` holds the authors' variant against their code on fixed (W, H) pairs.
"""

from typing import Any, Literal

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class SliMLLMParams(MethodParams):
    dampening_frac: float = 0.01
    # authors: SQC's weight on the error of each group's salient elements (their --lambda_salience, default 1)
    lambda_salience: float = Field(1.0, ge=0)
    # zoo-obs: 1-bit groups as mu +- mean|w - mu| around the row mean ("mean-binary", the default) or on
    # zoo's earlier 1-bit min-max grid ("minmax", 59.38 vs 61.36 pydoc perplexity on the tiny base, one thread)
    one_bit_grid: Literal["mean-binary", "minmax"] = "mean-binary"
    # "authors": the authors' algorithm (the default); "zoo-obs": zoo's earlier variant
    variant: Literal["authors", "zoo-obs"] = "authors"


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

SALIENCE_DAMP = 0.01  # what the authors' salience step adds to H's diagonal (absolute, in place)
SQC_NORM = 2.4  # the exponent of SQC's error


def _spans(cols: int, group: int) -> list[tuple[int, int]]:
    return [(i, min(i + group, cols)) for i in range(0, cols, group)]


def group_salience(w: Any, u: Any, group: int) -> Any:
    """Per group of columns: the sum of w^2 / [U]_jj^2 (U the upper Cholesky factor of H^-1)."""
    import torch

    s = w**2 / torch.diag(u).unsqueeze(0) ** 2
    return torch.stack([s[:, a:b].sum() for a, b in _spans(w.shape[1], group)])


def pairs(salience: Any, k: int, bits: int) -> list[int]:
    """The k least salient groups one bit down, the k most salient one bit up, the rest at ``bits``."""
    order = salience.argsort().tolist()
    alloc = [bits] * len(order)
    for g in order[:k]:
        alloc[g] = bits - 1
    for g in order[len(order) - k :] if k else []:
        alloc[g] = bits + 1
    return alloc


def binarize_authors(x: Any) -> Any:
    """The authors' 1-bit group along dim 1: mu + mean|x| sign(x - mu), mu the row mean."""
    import torch

    mu = x.mean(dim=1, keepdim=True)
    return mu + x.abs().mean(dim=1, keepdim=True) * torch.sign(x - mu)


def candidates(groups: int) -> list[int]:
    """The k the authors search, 1 .. n/2 - 1 of n groups. Below 4 groups that range is empty (their code
    stops there); zoo then lets the same score choose between k = 0 and the one pair there is (k = 1)."""
    if groups < 2:
        return [0]
    return list(range(1, groups // 2)) or [0, 1]


def output_scores(w: Any, h: Any, bits: int, group: int, salience: Any) -> list[float]:
    """For each candidate k: the output error tr(C dW H dW^T C) of rounding every group at its allocated width,
    C removing each token's mean over output channels (the KL's second-order term at a uniform softmax).

    The error is a sum over pairs of groups, so it is assembled from per-width, per-group-pair terms (three
    matrix products in all, whatever the number of k)."""
    import torch

    from zoo.methods import obs

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


def sqc(w1: Any, u1: Any, bits: int, mid_zero: bool, lam: float = 1.0) -> tuple[Any, Any]:
    """SQC: per row, the scale and zero point of the min-max grid whose range, scaled by one of 101 factors in
    [0.9, 1.1], minimizes sum |Q(w) - w|^2.4 (salient elements' error weighted by ``lam``)."""
    import torch

    top = 2**bits - 1
    lo, hi = w1.amin(1).clamp(max=0), w1.amax(1).clamp(min=0)
    flat = (lo == 0) & (hi == 0)
    lo, hi = torch.where(flat, -1.0, lo), torch.where(flat, 1.0, hi)
    weight = None
    if lam != 1:
        s = w1**2 / torch.diag(u1).unsqueeze(0) ** 2
        far = s[((s - s.mean()) / s.std()).abs() > 2]
        if far.numel():  # the authors' code needs at least one; none: no element is salient
            weight = torch.where(s >= far.min(), lam, 1.0)
    factors = torch.cat([torch.ones(1), torch.linspace(1.0, 1.1, 51)[1:], torch.linspace(1.0, 0.9, 51)[1:]])
    best_err = torch.full_like(lo, float("inf"))
    best_scale, best_zero = torch.zeros_like(lo), torch.zeros_like(lo)
    chunk = max(1, 2**24 // w1.numel())
    for c in range(0, len(factors), chunk):
        p = factors[c : c + chunk].to(w1.device).unsqueeze(1)
        scale = (p * hi - p * lo) / top
        zero = torch.full_like(scale, (top + 1) / 2) if mid_zero else torch.round(-(p * lo) / scale)
        q = (torch.clamp(torch.round(w1 / scale[..., None]) + zero[..., None], 0, top) - zero[..., None]) * scale[..., None]
        e = (q - w1).abs().pow(SQC_NORM)
        err = (e if weight is None else e * weight).sum(2)  # [factors, rows]
        low, at = err.min(0)  # the first minimal factor of this chunk
        better = low < best_err  # strictly: an earlier factor keeps a tie
        rows = torch.arange(w1.shape[0], device=w1.device)
        best_err = torch.where(better, low, best_err)
        best_scale = torch.where(better, scale[at, rows], best_scale)
        best_zero = torch.where(better, zero[at, rows], best_zero)
    return best_scale, best_zero


def _authors_hessian(h: Any) -> Any:
    """H as the authors' quantization step sees it: dead inputs at 1 and 0.01 added by their salience step."""
    import torch

    from zoo.methods import obs

    return obs.damped(h, 0.0) + SALIENCE_DAMP * torch.eye(h.shape[0], device=h.device)


def _authors_allocate(w: Any, h: Any, bits: int, group: int, dampening: float) -> list[int]:
    from zoo.methods import obs

    h1 = _authors_hessian(h)
    search = group_salience(w, obs.inverse_hessian_factor(h1, 0.0), group)  # their salience step: no 1% damping
    scores = output_scores(w, h, bits, group, search)
    k = candidates(search.numel())[scores.index(min(scores))]  # the first best, as list.index
    return pairs(group_salience(w, obs.inverse_hessian_factor(h1, dampening), group), k, bits)


def _authors(w: Any, h: Any, bits: int, group: int, dampening: float, lam: float) -> Any:
    import torch

    from zoo.methods import obs

    w = w.float()
    alloc = _authors_allocate(w, h, bits, group, dampening)
    state = {"mid_zero": True}  # the authors' quantizer starts symmetric; the first group at >= bits ends that

    def block(w1: Any, h1: Any, first: int) -> Any:
        b = alloc[first // group]
        if b == 1:
            mu, alpha = w1.mean(dim=1), w1.abs().mean(dim=1)
            return lambda i, col: mu + alpha * torch.sign(col - mu)
        if b >= bits:
            state["mid_zero"] = False
        scale, zero = sqc(w1, h1, b, state["mid_zero"], lam)
        top = 2**b - 1
        return lambda i, col: (torch.clamp(torch.round(col / scale) + zero, 0, top) - zero) * scale

    q = obs.quantize(w, _authors_hessian(h), block, block_size=group, dampening=dampening)
    return q, alloc


def allocate(
    w: Any, h: Any, bits: int, group: int, dampening: float = 0.01, one_bit_grid: str = "mean-binary",
    variant: str = "authors",
) -> list[int]:  # fmt: skip
    """Bit width per column group, mean exactly ``bits``."""
    if variant == "authors":
        return _authors_allocate(w.float(), h, bits, group, dampening)
    return _zoo_obs_allocate(w, h, bits, group, dampening, one_bit_grid)


def quantize_weight(
    w: Any, h: Any, bits: int, group: int = 128, dampening: float = 0.01, one_bit_grid: str = "mean-binary",
    variant: str = "authors", lambda_salience: float = 1.0,
) -> Any:  # fmt: skip
    """``one_bit_grid`` applies to zoo-obs, ``lambda_salience`` to the authors' variant."""
    from zoo.methods.native import Quantized

    if variant == "authors":
        q, alloc = _authors(w, h, bits, group, dampening, lambda_salience)
    else:
        q, alloc = _zoo_obs(w, h, bits, group, dampening, one_bit_grid)
    widths = [e - a for a, e in _spans(w.shape[1], group)]
    code = float(sum(b * n for b, n in zip(alloc, widths, strict=True)) * w.shape[0])
    return Quantized(q, bits=code + len(alloc) * (w.shape[0] * 32 + 2), code_bits=code)


# zoo-obs: zoo's earlier variant, unchanged


def binarize(x: Any, dim: int = -1) -> Any:
    """zoo-obs's 1-bit quantizer (``one_bit_grid: mean-binary``): mean +- mean |w - mean| per row (a min-max
    grid at 1 bit has the levels {min(0, lo), max(0, hi)}, nearly zeroing the group). The authors' code scales
    by mean |w| instead (``binarize_authors``)."""
    from zoo.methods import obs

    mu = x.mean(dim=dim, keepdim=True)
    alpha = (x - mu).abs().mean(dim=dim, keepdim=True)
    return mu + alpha * obs.sign(x - mu)  # +1 at 0: a binarized value is never the mean itself


def group_quantize(x: Any, bits: int, dim: int = -1, one_bit_grid: str = "mean-binary") -> Any:
    from zoo.methods import obs

    return binarize(x, dim) if bits == 1 and one_bit_grid == "mean-binary" else obs.uniform(x, bits, dim=dim)


def _zoo_obs_allocate(w: Any, h: Any, bits: int, group: int, dampening: float, one_bit_grid: str) -> list[int]:
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
        alloc = pairs(salience, k, bits)
        err = sum(float(salience[g]) * cost[alloc[g]][g] for g in range(len(order)))
        if err < best_err:
            best, best_err = alloc, err
    return best


def _zoo_obs(w: Any, h: Any, bits: int, group: int, dampening: float, one_bit_grid: str) -> tuple[Any, list[int]]:
    from zoo.methods import obs

    alloc = _zoo_obs_allocate(w, h, bits, group, dampening, one_bit_grid)

    def block(w1: Any, h1: Any, first: int) -> Any:
        b = alloc[first // group]
        if b == 1 and one_bit_grid == "mean-binary":  # mean and scale fixed per row from the block's start
            mu = w1.mean(dim=1)
            alpha = (w1 - mu.unsqueeze(1)).abs().mean(dim=1)
            return lambda i, col: mu + alpha * obs.sign(col - mu)
        grid = obs.row_grid(w1, b)
        return lambda i, col: grid(col)

    return obs.quantize(w, h, block, block_size=group, dampening=dampening), alloc


def quantize(ctx: BuildContext[SliMLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    bits, group = int(ctx.recipe.weights.bits), int(ctx.recipe.weights.group_size)
    weights: dict[str, Any] = {"bits": bits, "group_size": group, "variant": p.variant}
    if p.variant == "authors":
        weights.update({"allocation": "salience pairs, k by output KL (second order, from H)",
                        "calibration": "SQC", "lambda_salience": p.lambda_salience})  # fmt: skip
    else:
        weights.update({"allocation": "salience pairs", "one_bit_grid": p.one_bit_grid})

    def one(w: Any, h: Any) -> Any:
        return quantize_weight(w, h, bits, group, p.dampening_frac, p.one_bit_grid, p.variant, p.lambda_salience)

    return native.run(ctx, one, {"weights": weights})
