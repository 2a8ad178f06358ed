"""PB-LLM (Shang et al. 2023, arXiv 2310.00034): partial binarization, salient weights kept at 8 bits.

Implemented, per block of ``group_size`` columns inside the OBS loop (GPTQ-style error compensation):
the ``salient_fraction`` of weights with the largest Hessian criterion w^2 / [H^-1]_jj^2 are kept on a
per-row 8-bit min-max grid; every other weight is binarized to +/- alpha, alpha the per-row mean |w|
of the block's non-salient weights (so each row of a block holds exactly two binarized values).

Bits per weight: code bits (1 - r) * 1 + r * 8, which is what "PB-LLM 1.7 / 2 bits" names (r = 0.1 /
0.143). With metadata, add the salient mask as an ideally coded bitmap (H(r) bits per weight) and, per
row and block, alpha, the 8-bit scale and zero point (3 x 16 bits).

Faithfulness: this is zoo's variant, not the authors' algorithm; ``zoo/fidelity.py`` says where it
differs and by how much (measured against their code), and the card and ``zoo show`` print it.
"""

from typing import Any

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class PBLLMParams(MethodParams):
    salient_fraction: float = Field(0.1, ge=0, le=0.5)
    salient_bits: int = 8
    dampening_frac: float = 0.01


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


def quantize_weight(w: Any, h: Any, fraction: float, group: int = 128, salient_bits: int = 8, dampening: float = 0.01) -> Any:
    import torch

    from zoo.methods import obs
    from zoo.methods.native import Quantized

    rows = w.shape[0]
    stats = {"salient": 0, "meta": 0.0}

    def block(w1: Any, h1: Any, first: int) -> Any:
        score = w1**2 / torch.diag(h1).unsqueeze(0) ** 2
        k = int(round(fraction * w1.numel()))
        mask = torch.zeros_like(w1, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(score.view(-1), k).indices] = True
        keep = ~mask
        alpha = (w1.abs() * keep).sum(1) / keep.sum(1).clamp(min=1)
        grid = obs.row_grid(w1, salient_bits)
        stats["salient"] += k
        stats["meta"] += obs.entropy_bits(k, w1.numel()) + rows * 48

        def column(i: int, col: Any) -> Any:
            return torch.where(mask[:, i], grid(col), alpha * obs.sign(col))

        return column

    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = (w.numel() - stats["salient"]) * 1 + stats["salient"] * salient_bits
    return Quantized(q, bits=code + stats["meta"], code_bits=float(code))


def quantize(ctx: BuildContext[PBLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    group = int(ctx.recipe.weights.group_size)
    scheme = {"weights": {"salient_fraction": p.salient_fraction, "salient_bits": p.salient_bits, "group_size": group}}
    return native.run(
        ctx, lambda w, h: quantize_weight(w, h, p.salient_fraction, group, p.salient_bits, p.dampening_frac), scheme
    )
