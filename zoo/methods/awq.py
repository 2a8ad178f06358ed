"""AWQ (Lin et al. 2023, arXiv 2306.00978): activation-aware per-channel scaling, then grouped rounding."""

from typing import Any

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class AWQParams(MethodParams):
    n_grid: int = 20
    duo_scaling: bool = True


SPEC = MethodSpec(
    name="awq",
    builder="zoo.methods.awq:quantize",
    title="AWQ",
    paper="Lin et al. 2023, AWQ: Activation-aware Weight Quantization, arXiv 2306.00978",
    params=AWQParams,
    weight_bits=(2, 3, 4, 8),
    symmetric=False,
    formats=("compressed-tensors", "awq"),
)


def quantize(ctx: BuildContext[AWQParams]) -> dict[str, Any]:
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from llmcompressor.modifiers.transform.awq.mappings import AWQMapping, default_mappings

    from zoo.methods import llmc

    p = ctx.params
    if ctx.recipe.format == "awq":
        from zoo.methods import gptqm

        return gptqm.quantize(ctx, gptqm.awq_config(ctx.recipe))
    scope = ctx.family.lm_scope
    mappings = [
        AWQMapping(llmc.scoped([m.smooth_layer], scope)[0], llmc.scoped(list(m.balance_layers), scope)) for m in default_mappings
    ]
    awq = AWQModifier(mappings=mappings, duo_scaling=p.duo_scaling, n_grid=p.n_grid)
    quant = QuantizationModifier(config_groups=llmc.config_groups(ctx.recipe), ignore=list(ctx.family.ignore))
    return llmc.run(ctx, [awq, quant])
