"""QLoRA (Dettmers et al. 2023, arXiv 2305.14314): the base in 4-bit NormalFloat with double
quantization, frozen, and LoRA adapters trained on instruction data on top of it.

Defaults are the QLoRA / IR-QLoRA repositories' Alpaca runs (r 64, alpha 16, dropout 0.1 on every
projection, lr 2e-4 constant after 3% warm-up, grad-norm 0.3, batch 16, 10000 steps, 384 + 128
tokens). The build trains on the recipe's device (``zoo/lora/``) and writes a peft adapter that loads
onto the base quantized by bitsandbytes with the stock ``BitsAndBytesConfig``; ``merge: true`` adds a
16-bit checkpoint with the adapter merged into the dequantized base.
"""

from typing import Any, Literal

from pydantic import Field, field_validator

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class LoRAParams(MethodParams):
    rank: int = Field(64, gt=0)
    alpha: float = 16
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    dataset: str = "alpaca"
    learning_rate: float = Field(2e-4, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_grad_norm: float = Field(0.3, gt=0)
    steps: int = Field(10000, gt=0)
    batch_size: int = Field(16, gt=0)
    max_seq_len: int = Field(512, ge=8)
    save_every: int = Field(500, gt=0)
    double_quant: bool = True
    quant_type: Literal["nf4"] = "nf4"
    merge: bool = False
    seed: int = 0

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        from zoo.data.instructions import NAMES, is_known

        if not is_known(v):
            raise ValueError(f"unknown instruction dataset {v!r}; use one of {', '.join(NAMES)} or a .json/.jsonl path")
        return v


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
