"""SmoothQuant (Xiao et al. 2022, arXiv 2211.10438): migrate activation outliers into weights, then
quantize both (W8A8 / W6A6 / W4A4 in the study), weights per channel, activations per token."""

from typing import Any, Literal

from pydantic import Field

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class SmoothQuantParams(MethodParams):
    smoothing_strength: float = Field(0.5, gt=0, lt=1)
    weight_method: Literal["gptq", "rtn"] = "rtn"


SPEC = MethodSpec(
    name="smoothquant",
    builder="zoo.methods.smoothquant:quantize",
    title="SmoothQuant",
    paper="Xiao et al. 2022, SmoothQuant, arXiv 2211.10438",
    params=SmoothQuantParams,
    weight_bits=(4, 6, 8),
    grouped=False,
    symmetric=True,
    activation_bits=(4, 6, 8),
)


def quantize(ctx: BuildContext[SmoothQuantParams]) -> dict[str, Any]:
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
    from llmcompressor.modifiers.transform.smoothquant.utils import DEFAULT_SMOOTHQUANT_MAPPINGS

    from zoo.methods import llmc

    p = ctx.params
    scope = ctx.family.lm_scope
    mappings = [
        [llmc.scoped(list(m.balance_layers), scope), llmc.scoped([m.smooth_layers], scope)[0]]
        for m in DEFAULT_SMOOTHQUANT_MAPPINGS
    ]
    smooth = SmoothQuantModifier(smoothing_strength=p.smoothing_strength, mappings=mappings)
    weights = GPTQModifier if p.weight_method == "gptq" else QuantizationModifier
    quant = weights(config_groups=llmc.config_groups(ctx.recipe), ignore=list(ctx.family.ignore))
    return llmc.run(ctx, [smooth, quant])
