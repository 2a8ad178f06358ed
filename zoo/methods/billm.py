"""BiLLM (Huang et al. 2024, arXiv 2402.04291): residual binarization of salient columns and a
bell-shaped split of the other weights into two binarized groups; about 1.1 bits per weight.

``variant: authors`` (the default) is the algorithm as the authors' code runs it (Aaronhuang-778/BiLLM,
``run.py ... braq --blocksize 128 --salient_metric hessian``): per block of ``group_size`` columns, from the
weights as earlier blocks' compensation left them, the saliency s = w^2 / [U]_jj^2 (U the upper Cholesky
factor of H^-1) decides everything: the number of salient columns is searched (1 to ``max_salient_columns``
- 1 of the columns with the largest summed saliency, minimizing the error of binarizing s itself), then a
break point for the other weights among ``split_search_points`` percentiles (10% to 90%) of their
saliency. The salient columns are binarized twice (residual, order 2), each of the two other groups once;
every binarization is per row mu + alpha sign(x - mu) over its group's weights (mu the mean, alpha the mean
deviation). The block is quantized at once and its error pushed onto the later blocks only (no
compensation inside a block), as the authors' loop does. The searched salient share varies by block, so
code bits do too (about 1.13 measured against their 1.13 on the tiny base).

``variant: zoo-obs`` is zoo's earlier design, kept by name because it measured better in zoo's pipeline:
a fixed ``salient_columns`` share, binarization without the mean offset, the split on |w| among
``split_search_points`` quantiles, and GPTQ's compensation inside blocks (the OBS loop of ``obs.py``).

Bits per weight: code bits 1 per weight plus 1 per salient-column weight, which is what BiLLM's "1.1 bits"
counts. With metadata (stated because the paper does not count it): the salient-column bitmap, a 1-bit
group bitmap for every non-salient weight, and per row and block 16-bit scales (and means, authors).

Parity: ``tests/test_parity.py`` holds the authors' variant against their code on fixed (W, H) pairs.
"""

from typing import Any, Literal

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class BiLLMParams(MethodParams):
    salient_columns: float = Field(0.1, ge=0, le=0.5)  # zoo-obs: the fixed share of salient columns
    split_search_points: int | None = Field(None, gt=1)  # default: the authors' 81 percentiles; zoo-obs's 40 quantiles
    max_salient_columns: int = Field(50, gt=1)  # authors: salient columns searched in 1 .. this - 1
    dampening_frac: float = 0.01
    # "authors": the authors' algorithm (the default); "zoo-obs": zoo's earlier variant
    variant: Literal["authors", "zoo-obs"] = "authors"


SPEC = MethodSpec(
    name="billm",
    builder="zoo.methods.billm:quantize",
    title="BiLLM",
    paper="Huang et al. 2024, BiLLM: Pushing the Limit of Post-Training Quantization for LLMs, arXiv 2402.04291",
    params=BiLLMParams,
    weight_bits=(1.1,),
    per_channel=False,
    symmetric=True,
    formats=("fake",),
)


def _split(w: Any, points: int) -> Any:
    """The break point on |w| minimizing the two-group binarization error (shared by the block)."""
    import torch

    a = w.abs()
    best, best_err = a.max(), float("inf")
    for p in torch.quantile(a.flatten().float(), torch.linspace(0.05, 0.95, points, device=w.device)):
        inner = a <= p
        ac = (a * inner).sum(1, keepdim=True) / inner.sum(1, keepdim=True).clamp(min=1)
        asp = (a * ~inner).sum(1, keepdim=True) / (~inner).sum(1, keepdim=True).clamp(min=1)
        err = float(torch.where(inner, (a - ac) ** 2, (a - asp) ** 2).sum())
        if err < best_err:
            best, best_err = p, err
    return best


def residual(x: Any, mask: Any, order: int) -> Any:
    """The authors' binarizer: ``order`` times, per row over the masked entries, binarize what is left to
    mu + alpha sign(r - mu); zero outside the mask."""
    import torch

    m = mask.to(x.dtype)
    count = m.sum(1, keepdim=True)
    total = torch.zeros_like(x)
    for _ in range(order):
        r = (x - total) * m
        mu = torch.where(count > 0, r.sum(1, keepdim=True) / count.clamp(min=1), 0.0)
        alpha = torch.where(count > 0, ((r - mu).abs() * m).sum(1, keepdim=True) / count.clamp(min=1), 0.0)
        total = total + (torch.sign(r - mu) * alpha + mu) * m
    return total


def search(s: Any, max_salient: int, points: int) -> tuple[Any, Any, Any]:
    """The authors' structural search on one block's saliency ``s``: (salient, low, high) masks."""
    import torch

    def err(approx: Any) -> float:
        return float(((s - approx) ** 2).mean())

    ranked = torch.topk(s.abs().sum(0), min(max_salient, s.shape[1])).indices
    best, best_k = float("inf"), 1
    for k in range(1, min(max_salient, s.shape[1])):
        cols = torch.zeros_like(s, dtype=torch.bool)
        cols[:, ranked[:k]] = True
        e = err(residual(s, cols, 2) + residual(s, ~cols, 2))
        if e < best:
            best, best_k = e, k
    salient = torch.zeros_like(s, dtype=torch.bool)
    salient[:, ranked[:best_k]] = True
    rest = (s * ~salient).abs()
    top = residual(s, salient, 2)
    qs = torch.linspace(0.10, 0.90, points, dtype=torch.float64)
    best, split = float("inf"), None
    for value in torch.quantile(rest.flatten().double(), qs).to(s.dtype):
        low, high = (rest < value) & ~salient, (rest >= value) & ~salient
        e = err(residual(s, low, 1) + residual(s, high, 1) + top)
        if e < best:
            best, split = e, value
    return salient, (rest < split) & ~salient, (rest >= split) & ~salient


def _authors(w: Any, h: Any, group: int, max_salient: int, points: int, dampening: float) -> Any:
    import torch

    from zoo.methods import obs
    from zoo.methods.native import Quantized

    w = w.clone().float()
    w[:, torch.diag(h) == 0] = 0
    u = obs.inverse_hessian_factor(h, dampening)
    q = torch.zeros_like(w)
    columns = torch.zeros(w.shape[1], dtype=torch.bool, device=w.device)  # salient columns, for the packed form
    salient_weights, meta = 0, 0.0
    for i1 in range(0, w.shape[1], group):
        i2 = min(i1 + group, w.shape[1])
        w1, d = w[:, i1:i2], torch.diag(u[i1:i2, i1:i2]).unsqueeze(0)
        salient, low, high = search(w1**2 / d**2, max_salient, points)
        q1 = residual(w1, low, 1) + residual(w1, high, 1) + residual(w1, salient, 2)
        q[:, i1:i2] = q1
        columns[i1:i2] = salient[0]
        w[:, i2:] -= ((w1 - q1) / d) @ u[i1:i2, i2:]  # between blocks only, as the authors' loop
        k = int(salient[0].sum())
        salient_weights += k * w.shape[0]
        meta += obs.entropy_bits(k, i2 - i1) + (w.shape[0] * (i2 - i1 - k)) + w.shape[0] * 8 * 16
    code = float(w.numel() + salient_weights)
    return Quantized(q, bits=code + meta, code_bits=code, layout=layout(columns, group, signed=False))


def layout(columns: Any, group: int, signed: bool) -> dict[str, Any]:
    """The packed form: per weight a 2-bit index into its block row's four values, salient columns' own (their
    two residual signs) and the others' (low or high group, sign); ``signed``: zoo-obs's values come in +- pairs,
    so two magnitudes per block row and the sign as the code's top bit."""
    banks = [{"name": n, "rule": "table", "bits": 2, "group": group, "select": ("column", i), "signed": signed}
             for n, i in (("salient", 1), ("rest", 0))]  # fmt: skip
    return {"colbank": columns, "banks": banks}


def quantize_weight(
    w: Any, h: Any, fraction: float = 0.1, group: int = 128, points: int = 81, dampening: float = 0.01,
    variant: str = "authors", max_salient: int = 50,
) -> Any:  # fmt: skip
    """``fraction`` is zoo-obs's fixed salient share; the authors' variant searches it (up to ``max_salient``)."""
    if variant == "authors":
        return _authors(w, h, group, max_salient, points, dampening)
    return _zoo_obs(w, h, fraction, group, points, dampening)


def _zoo_obs(w: Any, h: Any, fraction: float, group: int = 128, points: int = 40, dampening: float = 0.01) -> Any:
    import torch

    from zoo.methods import obs
    from zoo.methods.native import Quantized

    rows = w.shape[0]
    stats = {"salient_cols": 0, "meta": 0.0}
    columns = torch.zeros(w.shape[1], dtype=torch.bool, device=w.device)

    def block(w1: Any, h1: Any, first: int) -> Any:
        score = (w1**2 / torch.diag(h1).unsqueeze(0) ** 2).sum(0)
        k = int(round(fraction * w1.shape[1]))
        salient = torch.zeros(w1.shape[1], dtype=torch.bool, device=w1.device)
        if k:
            salient[torch.topk(score, k).indices] = True
        columns[first : first + w1.shape[1]] = salient
        ws, wn = w1[:, salient], w1[:, ~salient]
        a1 = ws.abs().mean(1) if k else torch.zeros(rows, device=w1.device)
        a2 = (ws - a1.unsqueeze(1) * obs.sign(ws)).abs().mean(1) if k else a1
        p = _split(wn, points)
        inner = wn.abs() <= p
        ac = (wn.abs() * inner).sum(1) / inner.sum(1).clamp(min=1)
        asp = (wn.abs() * ~inner).sum(1) / (~inner).sum(1).clamp(min=1)
        stats["salient_cols"] += k
        stats["meta"] += w1.shape[1] + wn.numel() + rows * 64

        def column(i: int, col: Any) -> Any:
            if salient[i]:
                first_pass = a1 * obs.sign(col)
                return first_pass + a2 * obs.sign(col - first_pass)
            return torch.where(col.abs() <= p, ac, asp) * obs.sign(col)

        return column

    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = float(w.numel() + stats["salient_cols"] * rows)
    return Quantized(q, bits=code + stats["meta"], code_bits=code, layout=layout(columns, group, signed=True))


def quantize(ctx: BuildContext[BiLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    group = int(ctx.recipe.weights.group_size)
    points = p.split_search_points or (81 if p.variant == "authors" else 40)
    weights: dict[str, Any] = {"group_size": group, "split_search_points": points, "variant": p.variant}
    if p.variant == "authors":
        weights["max_salient_columns"] = p.max_salient_columns
    else:
        weights["salient_columns"] = p.salient_columns
    scheme = {"weights": weights}

    def one(w: Any, h: Any) -> Any:
        return quantize_weight(w, h, p.salient_columns, group, points, p.dampening_frac, p.variant,
                               p.max_salient_columns)  # fmt: skip

    return native.run(ctx, one, scheme)
