"""IR-QLoRA (Qin et al. 2024, "Accurate LoRA-Finetuning Quantization of LLMs via Information
Retention", arXiv 2402.05445): QLoRA with the base's NF4 blocks calibrated by an entropy-maximising
offset (information calibration quantization, ``zoo/lora/icq.py``) and LoRA branches with learnt
parameter-free shortcuts (information elastic connection, ``zoo/lora/iec.py``).

Implemented as in the authors' code: the tau search (``tau_range`` 0.1, ``tau_steps`` 100, offsets
stored in 8 bits per block), and IEC on every LoRA branch. The elastic shortcuts are folded into the
saved LoRA weights (exact, they are linear), so the adapter is a standard peft LoRA; the offsets are
saved in ``icq.safetensors`` and the base must be quantized with them (``zoo.lora.load``), which the
stock ``BitsAndBytesConfig`` cannot do. Not implemented: the paper's integer-quantizer variant.
"""

from typing import Any

from pydantic import Field

from zoo.methods.base import BuildContext, MethodSpec
from zoo.methods.qlora import LoRAParams


class IRQLoRAParams(LoRAParams):
    tau_range: float = Field(0.1, gt=0)
    tau_steps: int = Field(100, gt=0)
    elastic_connection: bool = True


SPEC = MethodSpec(
    name="irqlora",
    builder="zoo.methods.irqlora:quantize",
    title="IR-QLoRA",
    paper="Qin et al. 2024, Accurate LoRA-Finetuning Quantization of LLMs via Information Retention, arXiv 2402.05445",
    params=IRQLoRAParams,
    weight_bits=(4,),
    per_channel=False,
    symmetric=True,
    formats=("adapter",),
    calibrated=False,
    group_sizes=(64,),  # bitsandbytes' NF4 block, which the stock BitsAndBytesConfig rebuilds
    text_only=True,
)


def quantize(ctx: BuildContext[IRQLoRAParams]) -> dict[str, Any]:
    from zoo.lora.build import run

    p = ctx.params
    return run(ctx, p, calibrate=(p.tau_range, p.tau_steps), elastic=p.elastic_connection)
