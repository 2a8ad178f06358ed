"""DB-LLM (Chen et al. 2024, arXiv 2402.11960): flexible dual binarization (FDB) at 2 bits.

Implemented: the FDB quantizer. Per row and block of ``group_size`` columns, a 2-bit min-max grid
gives codes q = 2 * b1 + b2 with binary b1, b2 in {0, 1}; the two binary matrices get their own
scales and an offset, w ~ a1 * b1 + a2 * b2 + c, fitted by least squares to the block's weights
(the "flexible" part: a1 is no longer tied to 2 * a2), and rounding runs inside the OBS loop with
GPTQ-style error compensation. Not implemented: the deviation-aware distillation (DAD) fine-tuning
the study used on top; ``distillation: true`` is refused rather than silently ignored.

Bits per weight: 2 code bits (two binary matrices). With metadata: a1, a2 and c per row and block
(3 x 16 bits).

Faithfulness: without DAD this is not the study's DB-LLM; ``zoo/fidelity.py`` says so, and the card and
``zoo show`` print it.
"""

from typing import Any

from zoo.errors import ZooError
from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class DBLLMParams(MethodParams):
    distillation: bool = False
    dampening_frac: float = 0.01


SPEC = MethodSpec(
    name="dbllm",
    builder="zoo.methods.dbllm:quantize",
    title="DB-LLM",
    paper="Chen et al. 2024, DB-LLM: Accurate Dual-Binarization for Efficient LLMs, arXiv 2402.11960",
    params=DBLLMParams,
    weight_bits=(2,),
    per_channel=False,
    symmetric=False,
    formats=("fake",),
)


def fdb_levels(w1: Any) -> Any:
    """Per-row values [c, c + a2, c + a1, c + a1 + a2] fitted to the block ``w1`` [rows, cols]."""
    import torch

    lo, hi = w1.amin(1, keepdim=True), w1.amax(1, keepdim=True)
    scale = ((hi - lo) / 3).clamp(min=1e-8)
    q = ((w1 - lo) / scale).round().clamp(0, 3)
    b1, b2 = (q >= 2).float(), (q % 2).float()
    design = torch.stack([b1, b2, torch.ones_like(b1)], dim=2)  # [rows, cols, 3]
    ata = design.transpose(1, 2) @ design + 1e-6 * torch.eye(3, device=w1.device)
    atb = design.transpose(1, 2) @ w1.unsqueeze(2)
    a1, a2, c = torch.linalg.solve(ata, atb).squeeze(2).unbind(1)
    return torch.stack([c, c + a2, c + a1, c + a1 + a2], dim=1)


def quantize_weight(w: Any, h: Any, group: int = 128, dampening: float = 0.01) -> Any:
    from zoo.methods import obs
    from zoo.methods.native import Quantized

    blocks = [0]

    def block(w1: Any, h1: Any, first: int) -> Any:
        levels = fdb_levels(w1)
        blocks[0] += 1

        def column(i: int, col: Any) -> Any:
            nearest = (col.unsqueeze(1) - levels).abs().argmin(1)
            return levels.gather(1, nearest.unsqueeze(1)).squeeze(1)

        return column

    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = 2.0 * w.numel()
    return Quantized(q, bits=code + blocks[0] * w.shape[0] * 48, code_bits=code)


def quantize(ctx: BuildContext[DBLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    if p.distillation:
        raise ZooError(
            f"{ctx.recipe.name}: DB-LLM's deviation-aware distillation is not implemented; fix: set params.distillation: false"
        )
    group = int(ctx.recipe.weights.group_size)
    scheme = {"weights": {"scheme": "flexible dual binarization", "group_size": group, "distillation": False}}
    return native.run(ctx, lambda w, h: quantize_weight(w, h, group, p.dampening_frac), scheme)
