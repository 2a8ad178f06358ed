"""QLoRA (Dettmers et al. 2023, arXiv 2305.14314): the base in 4-bit NormalFloat with double
quantization, frozen, and LoRA adapters trained on instruction data on top of it.

Defaults are the QLoRA / IR-QLoRA repositories' Alpaca runs (r 64, alpha 16, dropout 0.1 on every
projection, lr 2e-4 constant after 3% warm-up, grad-norm 0.3, batch 16, 10000 steps, 384 + 128
tokens). The build trains on the recipe's device (``zoo/lora/``) and writes a peft adapter that loads
onto the base quantized by bitsandbytes with the stock ``BitsAndBytesConfig``; ``merge: true`` adds a
16-bit checkpoint with the adapter merged into the dequantized base.
"""

from typing import Any

from zoo.lora.params import LoRAParams
from zoo.methods.base import BuildContext, MethodSpec

__all__ = ["SPEC", "LoRAParams", "quantize"]


SPEC = MethodSpec(
    name="qlora",
    builder="zoo.methods.qlora:quantize",
    title="QLoRA",
    paper="Dettmers et al. 2023, QLoRA: Efficient Finetuning of Quantized LLMs, arXiv 2305.14314",
    params=LoRAParams,
    weight_bits=(4,),
    per_channel=False,
    symmetric=True,
    formats=("adapter",),
    calibrated=False,
    group_sizes=(64,),  # bitsandbytes' NF4 block, which the stock BitsAndBytesConfig rebuilds
    text_only=True,
)


def quantize(ctx: BuildContext[LoRAParams]) -> dict[str, Any]:
    from zoo.lora.build import run

    return run(ctx, ctx.params, calibrate=None, elastic=False)
