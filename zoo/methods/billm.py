"""BiLLM (Huang et al. 2024, arXiv 2402.04291): residual binarization of salient columns and a
bell-shaped split of the other weights into two binarized groups; about 1.1 bits per weight.

Implemented, per block of ``group_size`` columns inside the OBS loop: the ``salient_columns``
fraction of columns with the largest Hessian criterion (sum of w^2 / [H^-1]_jj^2) is binarized twice,
w ~ a1 sign(w) + a2 sign(w - a1 sign(w)); for the rest a break point p on |w| is searched over
``split_search_points`` quantiles, splitting them into a concentrated (|w| <= p) and a sparse group,
each binarized to +/- its own per-row mean |w|.

Bits per weight: code bits 1 per weight plus 1 per salient-column weight (1.1 for 10% of columns),
which is what BiLLM's "1.1 bits" counts. With metadata (stated because the paper does not count it):
the salient-column bitmap, a 1-bit group bitmap for every non-salient weight, and four 16-bit scales
per row and block.

Faithfulness: this is zoo's variant, not the authors' algorithm; ``zoo/fidelity.py`` says where it
differs and by how much (measured against their code), and the card and ``zoo show`` print it.
"""

from typing import Any

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class BiLLMParams(MethodParams):
    salient_columns: float = Field(0.1, ge=0, le=0.5)
    split_search_points: int = Field(40, gt=1)
    dampening_frac: float = 0.01


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


def quantize_weight(w: Any, h: Any, fraction: float, group: int = 128, points: int = 40, dampening: float = 0.01) -> Any:
    import torch

    from zoo.methods import obs
    from zoo.methods.native import Quantized

    rows = w.shape[0]
    stats = {"salient_cols": 0, "meta": 0.0}

    def block(w1: Any, h1: Any, first: int) -> Any:
        score = (w1**2 / torch.diag(h1).unsqueeze(0) ** 2).sum(0)
        k = int(round(fraction * w1.shape[1]))
        salient = torch.zeros(w1.shape[1], dtype=torch.bool, device=w1.device)
        if k:
            salient[torch.topk(score, k).indices] = True
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
    return Quantized(q, bits=code + stats["meta"], code_bits=code)


def quantize(ctx: BuildContext[BiLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    group = int(ctx.recipe.weights.group_size)
    scheme = {
        "weights": {"salient_columns": p.salient_columns, "group_size": group, "split_search_points": p.split_search_points}
    }
    return native.run(
        ctx, lambda w, h: quantize_weight(w, h, p.salient_columns, group, p.split_search_points, p.dampening_frac), scheme
    )
