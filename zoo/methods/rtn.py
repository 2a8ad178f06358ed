"""RTN: round-to-nearest min-max quantization, no calibration; the study's floor for every bit width."""

from typing import Any

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class RTNParams(MethodParams):
    pass


SPEC = MethodSpec(
    name="rtn",
    builder="zoo.methods.rtn:quantize",
    title="RTN",
    paper="Round-to-nearest baseline (as in Frantar et al. 2022, arXiv 2210.17323)",
    params=RTNParams,
    weight_bits=(2, 3, 4, 8),
    symmetric=False,
    calibrated=False,
    formats=("compressed-tensors",),
)


def quantize(ctx: BuildContext[RTNParams]) -> dict[str, Any]:
    from llmcompressor.modifiers.quantization import QuantizationModifier

    from zoo.methods import llmc

    return llmc.run(
        ctx, [QuantizationModifier(config_groups=llmc.config_groups(ctx.recipe), ignore=list(ctx.family.ignore))], data_free=True
    )
