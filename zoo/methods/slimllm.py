"""SliM-LLM (Huang et al. 2024, arXiv 2405.14917): salience-driven mixed precision per group of columns.

``variant: authors`` (the default) is the algorithm as the authors' code runs it (Aaronhuang-778/SliM-LLM,
``slim-llm/run.py MODEL wikitext2 2bit --groupsize 128``, the GPTQ-based SliM-LLM):

- Their Hessian. GPTQ's ``add_batch`` averages over sequences, H = 2/sequences sum(x x^T), (tokens per
  window) times zoo's per-token H (``Hessian.per_sequence``); their salience step adds an absolute 0.01 to its
  diagonal in place (dead inputs first set to 1), so the 1% dampening after it sees that too and no input
  counts as dead. The absolute 0.01 is why the normalization matters here and nowhere else in zoo.
- Salience-determined bit allocation (SBA). A group's salience is the sum over its weights of
  w^2 / [U]_jj^2 (U the upper Cholesky factor of H^-1). Groups are ranked by it; k pairs move, the k least
  salient groups one bit down and the k most salient one bit up, so the mean stays at the recipe's bits. k is
  searched over 1 .. n/2 - 1 (n groups): each candidate, quantized by plain per-row min-max rounding (1-bit
  groups binarized as below) from the weights as they came, is scored on every calibration window by
  KL(softmax(X Wq^T) || softmax(X W^T)) over output channels (softmaxes clamped at 1e-6, mean over the window's
  tokens), in the model's dtype as their code computes it; the first k of least mean over windows wins. This
  ranking uses H + 0.01 I undamped, as their salience step does; the chosen k is applied to a ranking from the
  damped Hessian their GPTQ loop uses. The windows are seen in a second pass of the unquantized layer, as
  their ``get_block`` hooks see them (``native.run_steps``).
- Salience-weighted quantizer calibration (SQC). For every group of 2 bits or more, from the weights as GPTQ's
  compensation has left them, the per-row min-max range is scaled by each of 101 factors in [0.9, 1.1]
  (1, then 50 steps up, then 50 down) and each row keeps the first factor minimizing sum |Q(w) - w|^2.4, the
  error of the group's salient elements weighted by ``lambda_salience`` (salient: w^2 / [U]_jj^2 at or above
  the least of the group's values more than 2 standard deviations from their mean). The authors' default
  weight is 1, under which the salience weighting has no effect. (Their ``utils/bit_means.py`` k-means is
  never called.)
- 1-bit groups: mu + alpha sign(w - mu) per row, mu the row's mean and alpha its mean |w| (not the mean
  deviation from mu) over the group, fixed from the group's weights where the OBS loop starts the group.
- Columns are quantized by the OBS loop (``zoo.methods.obs``), one group per block, as their GPTQ loop does.
  A group one bit below the recipe's that comes before, in column order, every group at or above it is fitted
  with a fixed mid-range zero point ((2^b) / 2), because their quantizer's ``sym`` flag is only switched off by
  the first group at or above the recipe's bits (at W2 those groups are 1-bit: nothing changes; at W3 it can).

zoo's extension, where their code has none: in a layer of 2 or 3 groups their range 1 .. n/2 - 1 is empty and
their code stops (``min()`` of an empty list in ``slim_gptq.py``); zoo scores k = 0 (no pair) and k = 1 (the one
pair there is) with the same KL and keeps the first least. A single group stays at the recipe's bits. The tiny
bases' 256-wide Linears are of this kind; LLaMA-3-8B's and 70B's have 32 groups or more.

``score: second-order`` (a named option, not the authors') scores k by the KL's second-order expansion at a
uniform softmax, from H alone: tr(C dW H dW^T C), C = I - 11^T/m removing each token's mean over the m output
channels. A caller holding only (W, H), no windows, gets this score (``quantize_weight``).

``variant: zoo-obs`` is zoo's earlier design, kept by name in ``zoo.methods.slimllm_obs`` (with the
second-order score).

Not implemented: SliM-LLM+ (their ``slim-llm-plus``, OmniQuant-based, with learned clipping), and their
AutoGPTQ fork's packed mixed-precision format: zoo saves the dequantized weights (format "fake").

Bits per weight: code bits equal the recipe's bits (the allocation preserves the mean). With metadata: a
16-bit scale and zero (1-bit groups: mean and alpha) per row and group, and 2 bits per group for its width.

Parity: ``tests/test_slimllm.py`` holds the authors' variant against their code run from calibration windows
(normalization, damping, KL search and the quantized weights); ``tests/test_parity.py`` on fixed (W, H) pairs.
"""

from __future__ import annotations

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
    # authors: how k is scored, "kl" (their output KL on the calibration windows, the default) or
    # "second-order" (zoo's expansion of it from H alone)
    score: Literal["kl", "second-order"] = "kl"


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


def round_candidate(x: Any, bits: int) -> Any:
    """The authors' search quantizer for one group (dim 1), in ``x``'s dtype as their code leaves it: 1-bit
    groups binarized, wider ones rounded on the per-row min-max grid (computed in fp32; a flat row spans -1..1)."""
    if bits == 1:
        return binarize_authors(x)
    top = 2**bits - 1
    lo, hi = x.float().amin(1).clamp(max=0), x.float().amax(1).clamp(min=0)
    flat = (lo == 0) & (hi == 0)
    lo, hi = lo.masked_fill(flat, -1.0), hi.masked_fill(flat, 1.0)
    scale = ((hi - lo) / top).unsqueeze(1)
    zero = (-lo.unsqueeze(1) / scale).round()
    return (scale * ((x / scale).round() + zero).clamp(0, top).sub(zero)).to(x.dtype)


def kl(quantized_out: Any, out: Any) -> float:
    """The authors' score of one window: KL(softmax(quantized) || softmax(original)) over output channels, both
    clamped at 1e-6, summed and divided by the tokens (``batchmean``), in the outputs' dtype."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    p = F.softmax(quantized_out, dim=-1).clamp(min=1e-6)
    r = F.softmax(out, dim=-1).clamp(min=1e-6)
    return float(F.kl_div(torch.log(r), p, reduction="batchmean"))


def candidates(groups: int) -> list[int]:
    """The k the authors search, 1 .. n/2 - 1 of n groups. Below 4 groups that range is empty (their code
    stops there); zoo then lets the same score choose between k = 0 and the one pair there is (k = 1)."""
    if groups < 2:
        return [0]
    return list(range(1, groups // 2)) or [0, 1]


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


class Plan:
    """One Linear under the authors' variant: its candidate allocations, ranked from (W, H) as their salience
    step ranks them, the KL of each on every calibration window observed, then the quantized weight.

    ``w`` as the model stores it (their search quantizes and scores in that dtype), ``h`` normalized as their
    ``add_batch`` normalizes it (per sequence). ``score``: "kl" (theirs) or "second-order" (from H alone)."""

    def __init__(self, w: Any, h: Any, bits: int, group: int, dampening: float, lam: float, score: str) -> None:
        from zoo.methods import obs

        self.w, self.bits, self.group, self.dampening, self.lam = w, bits, group, dampening, lam
        self.h1 = _authors_hessian(h.float())
        search = group_salience(w, obs.inverse_hessian_factor(self.h1, 0.0), group)  # their salience step: undamped
        self.ks = candidates(search.numel())
        self.allocs = [pairs(search, k, bits) for k in self.ks]
        self.second_order = None
        if score == "second-order" and len(self.ks) > 1:
            from zoo.methods import slimllm_obs

            self.second_order = slimllm_obs.output_scores(w.float(), h.float(), bits, group, search)
        self.errors: list[list[float]] = []  # per window, one KL per candidate
        self.levels: dict[int, list[Any]] = {}

    @property
    def observes(self) -> bool:
        """Whether its choice needs the windows (more than one candidate, scored by KL)."""
        return self.second_order is None and len(self.ks) > 1

    def observe(self, x: Any, out: Any | None = None) -> None:
        """Score every candidate on one window: its inputs [tokens, in] and the Linear's outputs [tokens, out]."""
        import torch

        w = self.w
        spans = _spans(w.shape[1], self.group)
        if not self.levels:  # each group at each width the candidates use, rounded once
            self.levels = {b: [round_candidate(w[:, a:e], b) for a, e in spans] for b in {b for a in self.allocs for b in a}}
        x = x.to(w.dtype)
        out = x @ w.T if out is None else out.to(w.dtype)
        row = [kl(x @ torch.cat([self.levels[b][g] for g, b in enumerate(a)], dim=1).T, out) for a in self.allocs]
        self.errors.append(row)

    def k(self) -> int:
        import numpy as np

        if len(self.ks) == 1:
            return self.ks[0]
        if self.second_order is not None:
            scores = self.second_order
        elif self.errors:
            scores = [float(np.mean(e)) for e in zip(*self.errors, strict=True)]  # their mean over windows
        else:
            raise ValueError("SliM-LLM's KL search observed no calibration window")
        return self.ks[scores.index(min(scores))]  # the first best, as their list.index

    def allocation(self) -> list[int]:
        """The chosen k applied to the ranking from the damped Hessian their GPTQ loop uses."""
        from zoo.methods import obs

        u = obs.inverse_hessian_factor(self.h1, self.dampening)
        return pairs(group_salience(self.w.float(), u, self.group), self.k(), self.bits)

    def finish(self) -> Any:
        import torch

        from zoo.methods import obs

        alloc = self.allocation()
        bits, group, lam = self.bits, self.group, self.lam
        state = {"mid_zero": True}  # their quantizer starts symmetric; the first group at >= bits ends that
        grids: dict[int, tuple[Any, Any]] = {}  # group -> (scale, zero), for the packed form

        def block(w1: Any, h1: Any, first: int) -> Any:
            b = alloc[first // group]
            if b == 1:
                mu, alpha = w1.mean(dim=1), w1.abs().mean(dim=1)
                return lambda i, col: mu + alpha * torch.sign(col - mu)
            if b >= bits:
                state["mid_zero"] = False
            scale, zero = sqc(w1, h1, b, state["mid_zero"], lam)
            grids[first // group] = (scale, zero)
            top = 2**b - 1
            return lambda i, col: (torch.clamp(torch.round(col / scale) + zero, 0, top) - zero) * scale

        w = self.w.float()
        return _result(w, obs.quantize(w, self.h1, block, block_size=group, dampening=self.dampening), alloc, group, grids)


def layout(w: Any, alloc: list[int], group: int, grids: dict[int, tuple[Any, Any]]) -> dict[str, Any]:
    """The packed form: per column its group's width; 1-bit groups an index into their block row's two values,
    wider ones codes on their grid (fp32 scale, uint8 zero per row and group)."""
    import torch

    colbank = torch.tensor([b for b, (a, e) in zip(alloc, _spans(w.shape[1], group), strict=True) for _ in range(a, e)])
    banks: list[dict[str, Any]] = []
    for b in sorted(set(alloc)):
        bank: dict[str, Any] = {"name": f"w{b}", "bits": b, "group": group, "select": ("column", b)}
        held = sorted(g for g in grids if alloc[g] == b)
        if not held:  # binarized groups
            bank["rule"] = "table"
        else:
            bank.update(rule="grid", scale=torch.stack([grids[g][0] for g in held], 1),
                        zero=torch.stack([grids[g][1] for g in held], 1))  # fmt: skip
        banks.append(bank)
    return {"colbank": colbank, "banks": banks}


def _result(w: Any, q: Any, alloc: list[int], group: int, grids: dict[int, tuple[Any, Any]]) -> Any:
    from zoo.methods.native import Quantized

    widths = [e - a for a, e in _spans(w.shape[1], group)]
    code = float(sum(b * n for b, n in zip(alloc, widths, strict=True)) * w.shape[0])
    return Quantized(q, bits=code + len(alloc) * (w.shape[0] * 32 + 2), code_bits=code, layout=layout(w, alloc, group, grids))


def _plan(w: Any, h: Any, bits: int, group: int, dampening: float, lam: float, score: str, windows: Any) -> Plan:
    plan = Plan(w, h, bits, group, dampening, lam, score if windows is not None else "second-order")
    if plan.observes:
        for x in windows:
            plan.observe(x)
    return plan


def allocate(
    w: Any, h: Any, bits: int, group: int, dampening: float = 0.01, one_bit_grid: str = "mean-binary",
    variant: str = "authors", score: str = "kl", windows: Any = None,
) -> list[int]:  # fmt: skip
    """Bit width per column group, mean exactly ``bits``. ``h`` in the authors' normalization (per sequence);
    ``windows``: the calibration inputs [tokens, in] of each window (without them: the second-order score)."""
    if variant == "authors":
        return _plan(w, h, bits, group, dampening, 1.0, score, windows).allocation()
    from zoo.methods import slimllm_obs

    return slimllm_obs.allocate(w, h, bits, group, dampening, one_bit_grid)


def quantize_weight(
    w: Any, h: Any, bits: int, group: int = 128, dampening: float = 0.01, one_bit_grid: str = "mean-binary",
    variant: str = "authors", lambda_salience: float = 1.0, score: str = "kl", windows: Any = None,
) -> Any:  # fmt: skip
    """``one_bit_grid`` applies to zoo-obs, ``lambda_salience``, ``score`` and ``windows`` to the authors' variant
    (as in ``allocate``)."""
    if variant == "authors":
        return _plan(w, h, bits, group, dampening, lambda_salience, score, windows).finish()
    from zoo.methods import slimllm_obs

    grids: dict[int, tuple[Any, Any]] = {}
    q, alloc = slimllm_obs.quantize(w, h, bits, group, dampening, one_bit_grid, grids)
    return _result(w, q, alloc, group, grids)


def quantize(ctx: BuildContext[SliMLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    bits, group = int(ctx.recipe.weights.bits), int(ctx.recipe.weights.group_size)
    weights: dict[str, Any] = {"bits": bits, "group_size": group, "variant": p.variant}
    if p.variant == "zoo-obs":
        weights.update({"allocation": "salience pairs", "one_bit_grid": p.one_bit_grid})

        def one(w: Any, h: Any) -> Any:
            return quantize_weight(w, h, bits, group, p.dampening_frac, p.one_bit_grid, "zoo-obs")

        return native.run(ctx, one, {"weights": weights})
    how = "output KL on the calibration windows" if p.score == "kl" else "second-order output error from H"
    weights.update({"allocation": f"salience pairs, k by {how}", "hessian": "per sequence, + 0.01 I",
                    "calibration": "SQC", "lambda_salience": p.lambda_salience})  # fmt: skip

    return native.run_steps(ctx, step(bits, group, p), {"weights": weights})


def step(bits: int, group: int, p: SliMLLMParams) -> Any:
    """The authors' variant as ``native.run_steps`` calls it per Linear: their per-sequence H, then the KL
    search on the windows it observes (none when one candidate is all there is, or with the second-order score)."""

    def one(module: Any, hessian: Any) -> Any:
        plan = Plan(module.weight.data, hessian.per_sequence(), bits, group, p.dampening_frac, p.lambda_salience, p.score)
        return (plan.observe if plan.observes else None), plan.finish

    return one
