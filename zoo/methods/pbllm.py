"""PB-LLM (Shang et al. 2023, arXiv 2310.00034): partial binarization, salient weights kept at 8 bits.

``variant: authors`` (the default) is the algorithm as the authors' code runs it (hahnyuan/PB-LLM,
``gptq_pb``, Hessian salience, XNOR binarizer): per group of ``group_size`` columns, and once, from the
weights before any error compensation, the ``salient_fraction`` of weights with the largest
w^2 / [U]_jj^2 (U the upper Cholesky factor of H^-1) are marked salient; the rest of the group is
binarized to mu +- alpha per row, mu and alpha the mean and mean deviation of the group row with the
salient weights counted as zeros, as the authors compute them; the salient weights are rounded on one
asymmetric 8-bit min-max grid per row, fixed from the whole row. Columns are then quantized left to
right with GPTQ's error compensation (``zoo.methods.obs``), the mask and both grids staying as chosen.

``variant: zoo-obs`` is zoo's earlier design, kept by name because it measured better in zoo's
pipeline: the mask and alpha re-chosen per block from the weights as the OBS loop has updated them,
alpha the mean |w| of the non-salient weights (no mean offset), the 8-bit grid per block.

Bits per weight: code bits (1 - r) * 1 + r * 8, which is what "PB-LLM 1.7 / 2 bits" names (r = 0.1 /
0.143). With metadata, add the salient mask as an ideally coded bitmap (H(r) bits per weight) and the
16-bit statistics: per row and group mu and alpha (authors) or alpha and the block's 8-bit scale and
zero (zoo-obs), plus per row the 8-bit grid's scale and zero (authors).

Parity: ``tests/test_parity.py`` holds both variants against the authors' code on fixed (W, H) pairs.
"""

from typing import Any, Literal

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class PBLLMParams(MethodParams):
    salient_fraction: float = Field(0.1, ge=0, le=0.5)
    salient_bits: int = 8
    dampening_frac: float = 0.01
    # "authors": the authors' algorithm (the default); "zoo-obs": zoo's per-block variant
    variant: Literal["authors", "zoo-obs"] = "authors"


SPEC = MethodSpec(
    name="pbllm",
    builder="zoo.methods.pbllm:quantize",
    title="PB-LLM",
    paper="Shang et al. 2023, PB-LLM: Partially Binarized Large Language Models, arXiv 2310.00034",
    params=PBLLMParams,
    weight_bits=(1.7, 2),
    per_channel=False,
    symmetric=True,
    formats=("fake",),
)


def _authors(w: Any, fraction: float, salient_bits: int, stats: dict[str, Any]) -> Any:
    """The block quantizer of the authors' algorithm: mask and statistics from ``w`` as it was."""
    import torch

    from zoo.methods import obs

    rows = w.shape[0]
    high = obs.row_grid(w, salient_bits, stats["grids"])  # one grid per row, from the whole row
    stats["meta"] += rows * 32

    def block(w1: Any, h1: Any, first: int) -> Any:
        orig = w[:, first : first + w1.shape[1]]
        score = (orig**2 / torch.diag(h1).unsqueeze(0) ** 2).flatten()
        # the authors' threshold: the value at position floor(n * (1 - r)) of the sorted scores; at or below
        # it a weight is binarized
        low = (score <= score.sort().values[min(score.numel() - 1, int(score.numel() * (1 - fraction)))]).view_as(orig)
        masked = orig * low
        mu = masked.mean(1)
        alpha = (masked - mu.unsqueeze(1)).abs().mean(1)
        k = int((~low).sum())
        stats["mask"][:, first : first + w1.shape[1]] = ~low
        stats["salient"] += k
        stats["meta"] += obs.entropy_bits(k, orig.numel()) + rows * 32

        def column(i: int, col: Any) -> Any:
            return torch.where(low[:, i], mu + alpha * torch.sign(col - mu), high(col))

        return column

    return block


def _zoo_obs(fraction: float, salient_bits: int, stats: dict[str, Any]) -> Any:
    """The block quantizer of zoo's variant: mask, alpha and grid from the block as the OBS loop left it."""
    import torch

    from zoo.methods import obs

    def block(w1: Any, h1: Any, first: int) -> Any:
        score = w1**2 / torch.diag(h1).unsqueeze(0) ** 2
        k = int(round(fraction * w1.numel()))
        mask = torch.zeros_like(w1, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(score.view(-1), k).indices] = True
        keep = ~mask
        alpha = (w1.abs() * keep).sum(1) / keep.sum(1).clamp(min=1)
        grid = obs.row_grid(w1, salient_bits, stats["grids"])
        stats["mask"][:, first : first + w1.shape[1]] = mask
        stats["salient"] += k
        stats["meta"] += obs.entropy_bits(k, w1.numel()) + w1.shape[0] * 48

        def column(i: int, col: Any) -> Any:
            return torch.where(mask[:, i], grid(col), alpha * obs.sign(col))

        return column

    return block


def quantize_weight(
    w: Any, h: Any, fraction: float, group: int = 128, salient_bits: int = 8, dampening: float = 0.01,
    variant: str = "authors",
) -> Any:  # fmt: skip
    import torch

    from zoo.methods import obs
    from zoo.methods.native import Quantized

    mask = torch.zeros(w.shape, dtype=torch.bool, device=w.device)  # salient weights, for the packed form
    stats: dict[str, Any] = {"salient": 0, "meta": 0.0, "grids": [], "mask": mask}
    if variant == "authors":
        w0 = w.clone().float()
        w0[:, torch.diag(h) == 0] = 0  # as the OBS loop zeroes dead inputs
        block = _authors(w0, fraction, salient_bits, stats)
    else:
        block = _zoo_obs(fraction, salient_bits, stats)
    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = (w.numel() - stats["salient"]) * 1 + stats["salient"] * salient_bits
    packed = _layout(stats, w.shape[1], group, salient_bits, variant)
    return Quantized(q, bits=code + stats["meta"], code_bits=float(code), layout=packed)


def _layout(stats: dict[str, Any], cols: int, group: int, salient_bits: int, variant: str) -> dict[str, Any]:
    """The packed form: the salient mask (Rice-coded), the binarized weights as a 1-bit index into their block row's
    two values (zoo-obs: the sign of its one alpha), the salient ones as ``salient_bits`` codes on their grid (per
    row, authors; per row and block, zoo-obs)."""
    import torch

    scale = torch.stack([s for s, _ in stats["grids"]], dim=1)
    zero = torch.stack([z for _, z in stats["grids"]], dim=1)
    banks = [
        {"name": "binary", "rule": "table", "bits": 1, "group": group, "select": ("mask", False), "signed": variant != "authors"},
        {"name": "salient", "rule": "grid", "bits": salient_bits, "group": cols if variant == "authors" else group,
         "select": ("mask", True), "scale": scale, "zero": zero},
    ]  # fmt: skip
    return {"mask": stats["mask"], "banks": banks}


def quantize(ctx: BuildContext[PBLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    group = int(ctx.recipe.weights.group_size)
    scheme = {"weights": {"salient_fraction": p.salient_fraction, "salient_bits": p.salient_bits, "group_size": group,
                          "variant": p.variant}}  # fmt: skip

    def one(w: Any, h: Any) -> Any:
        return quantize_weight(w, h, p.salient_fraction, group, p.salient_bits, p.dampening_frac, p.variant)

    return native.run(ctx, one, scheme)
