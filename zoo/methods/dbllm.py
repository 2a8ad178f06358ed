"""DB-LLM (Chen et al. 2024, arXiv 2402.11960): flexible dual binarization (FDB) at 2 bits, then
deviation-aware distillation (DAD) from the 16-bit base.

Implemented:

- FDB. Per row and block of ``group_size`` columns, a 2-bit min-max grid gives codes q = 2 * b1 + b2
  with binary b1, b2 in {0, 1}; the two binary matrices get their own scales and an offset,
  w ~ a1 * b1 + a2 * b2 + c, fitted by least squares to the block's weights (the "flexible" part: a1
  is no longer tied to 2 * a2), and rounding runs inside the OBS loop with GPTQ-style error
  compensation.
- DAD (``zoo/methods/dad.py``; ``distillation: true``, the default, as the study's cell used it). After
  the FDB pass the binary codes are frozen and the per-row-and-block a1, a2, c are trained end to end
  against the 16-bit base on the calibration windows, with the distillation loss weighted towards the
  tokens on which teacher and student are both uncertain. Each row-block still decodes to at most 4
  values, so the bits per weight do not change. ``distillation: false`` is FDB alone.

Not implemented: the paper trains the latent full-precision weights as well (quantization-aware
training with a straight-through estimator, so codes may flip) on data the teacher generates; zoo keeps
the codes of the OBS pass and distils on the recipe's calibration windows. The paper's exact loss
formula and its training hyper-parameters were not at hand: ``zoo/methods/dad.py`` says which choices
are zoo's.

Bits per weight: 2 code bits (two binary matrices). With metadata: a1, a2 and c per row and block
(3 x 16 bits). The packed checkpoint (``zoo.packed.codec``'s ``dual`` rule) stores 50 bits a row and block:
three of the four levels as the 16-bit checkpoint rounded them and a 2-bit correction of the fourth, derived
as v1 + v2 - v0. a1, a2 and c themselves are fp32 (96 bits) and the levels are rounded from them, so 16-bit
a1, a2, c would not restore the weights bit for bit.

Faithfulness: ``zoo/fidelity.py`` says how far this is from the paper, and the card and ``zoo show``
print it.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec
from zoo.methods.native import Quantized


class DBLLMParams(MethodParams):
    distillation: bool = True  # DAD after FDB (the study's DB-LLM); false: FDB alone
    # zoo's choices (the paper's values were not at hand), measured on the tiny base; see zoo/methods/dad.py
    distillation_epochs: int = Field(2, ge=1)  # passes over the calibration windows, one window a step
    distillation_lr: float = Field(5e-4, gt=0)  # Adam on a1, a2, c, cosine-decayed to 0
    distillation_gamma: float = Field(1.0, ge=0)  # exponent of the ambiguity weight; 0 is plain distillation
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


@dataclass(frozen=True)
class FDBQuantized(Quantized):
    """A Linear's FDB result with what distillation trains from: ``codes`` [rows, cols] (uint8, q = 2 * b1
    + b2, fixed from here on) and ``levels`` [rows, blocks, 4], the decoded values of q = 0 .. 3 per row
    and block (c, c + a2, c + a1, c + a1 + a2)."""

    codes: Any = None
    levels: Any = None


def fdb_levels(w1: Any) -> Any:
    """Per-row values [c, c + a2, c + a1, c + a1 + a2] fitted to the block ``w1`` [rows, cols]."""
    import torch

    lo, hi = w1.amin(1, keepdim=True), w1.amax(1, keepdim=True)
    scale = ((hi - lo) / 3).clamp(min=1e-8)
    q = ((w1 - lo) / scale).round().clamp(0, 3)
    b1, b2 = (q >= 2).float(), (q % 2).float()
    design = torch.stack([b1, b2, torch.ones_like(b1)], dim=2).double()  # [rows, cols, 3]
    ata = design.transpose(1, 2) @ design
    atb = design.transpose(1, 2) @ w1.double().unsqueeze(2)
    # A row whose outlier stretches the grid puts all its other weights on code 0 (b1 = b2 everywhere): the
    # system is singular there, and the pseudo-inverse's least-norm fit splits a1 = a2 (codes 1, 2 decode
    # to the midpoint) where a plain solve stops the build.
    a1, a2, c = (torch.linalg.pinv(ata) @ atb).squeeze(2).to(w1.dtype).unbind(1)
    return torch.stack([c, c + a2, c + a1, c + a1 + a2], dim=1)


def quantize_weight(w: Any, h: Any, group: int = 128, dampening: float = 0.01) -> FDBQuantized:
    import torch

    from zoo.methods import obs

    codes = torch.zeros(w.shape, dtype=torch.uint8, device=w.device)
    levels: list[Any] = []

    def block(w1: Any, h1: Any, first: int) -> Any:
        block_levels = fdb_levels(w1)
        levels.append(block_levels)

        def column(i: int, col: Any) -> Any:
            nearest = (col.unsqueeze(1) - block_levels).abs().argmin(1)
            codes[:, first + i] = nearest.to(torch.uint8)
            return block_levels.gather(1, nearest.unsqueeze(1)).squeeze(1)

        return column

    q = obs.quantize(w, h, block, block_size=group, dampening=dampening)
    code = 2.0 * w.numel()
    bits = code + len(levels) * w.shape[0] * 48
    # packed: a 2-bit index into each block row's four levels, read from the weights as finally saved ("final":
    # distillation retrains the levels after this pass); "dual" stores three levels and derives the fourth
    packed = {"final": True, "banks": [{"name": "levels", "rule": "dual", "bits": 2, "group": group, "select": ("all",)}]}
    return FDBQuantized(q, bits=bits, code_bits=code, layout=packed, codes=codes, levels=torch.stack(levels, dim=1))


def quantize(ctx: BuildContext[DBLLMParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    group = int(ctx.recipe.weights.group_size)
    weights: dict[str, Any] = {"scheme": "flexible dual binarization", "group_size": group, "distillation": p.distillation}
    table: dict[Any, tuple[Any, Any]] = {}  # nn.Linear -> (codes, levels) on the host, for DAD

    def keep(module: Any, result: Quantized) -> None:
        assert isinstance(result, FDBQuantized)
        table[module] = (result.codes.cpu(), result.levels.cpu())

    model, bits, code = native.quantize_layers(
        ctx, native.plain(lambda w, h: quantize_weight(w, h, group, p.dampening_frac)), keep if p.distillation else None
    )
    if p.distillation:
        from zoo.methods import dad

        weights["distillation_loss"] = "deviation-aware (entropy-weighted KL to the 16-bit base)"
        weights.update(dad.distill(ctx, model, table, p.distillation_epochs, p.distillation_lr, p.distillation_gamma, group))
    return native.save(ctx, model, bits, code, {"weights": weights})
