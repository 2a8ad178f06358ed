"""GPTQ (Frantar et al. 2022, arXiv 2210.17323): second-order weight rounding from calibration data."""

from typing import Any, Literal

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class GPTQParams(MethodParams):
    dampening_frac: float = Field(0.01, gt=0, lt=1)
    block_size: int = Field(128, gt=0)
    # None: columns in natural order, as the study's GPTQ runs; "static"/"group"/"weight": act-order
    actorder: Literal["static", "group", "weight"] | None = None


SPEC = MethodSpec(
    name="gptq",
    builder="zoo.methods.gptq:quantize",
    title="GPTQ",
    paper="Frantar et al. 2022, GPTQ: Accurate Post-Training Quantization for GPTs, arXiv 2210.17323",
    params=GPTQParams,
    weight_bits=(2, 3, 4, 8),
    symmetric=False,
    formats=("compressed-tensors", "gptq"),
)


def quantize(ctx: BuildContext[GPTQParams]) -> dict[str, Any]:
    from llmcompressor.modifiers.quantization import GPTQModifier

    from zoo.methods import llmc

    p = ctx.params
    if ctx.recipe.format == "gptq":
        from zoo.methods import gptqm

        return gptqm.quantize(ctx, gptqm.gptq_config(ctx.recipe, p.dampening_frac, p.actorder))
    modifier = GPTQModifier(
        config_groups=llmc.config_groups(ctx.recipe),
        ignore=list(ctx.family.ignore),
        dampening_frac=p.dampening_frac,
        block_size=p.block_size,
        actorder=p.actorder,
    )
    return llmc.run(ctx, [modifier])
