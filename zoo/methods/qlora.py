"""QLoRA (Dettmers et al. 2023, arXiv 2305.14314): NF4 base with double quantization and LoRA adapters
fine-tuned on an instruction set. Defaults follow the QLoRA repository's finetuning scripts."""

from typing import Literal

from pydantic import Field

from zoo.methods.base import MethodParams, MethodSpec


class LoRAParams(MethodParams):
    rank: int = Field(64, gt=0)
    alpha: float = 16
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    dataset: str = "alpaca"
    learning_rate: float = 2e-4
    steps: int = Field(10000, gt=0)
    batch_size: int = Field(16, gt=0)
    max_seq_len: int = Field(512, gt=0)
    double_quant: bool = True
    quant_type: Literal["nf4"] = "nf4"
    merge: bool = False
    seed: int = 0


SPEC = MethodSpec(
    name="qlora",
    title="QLoRA",
    paper="Dettmers et al. 2023, QLoRA: Efficient Finetuning of Quantized LLMs, arXiv 2305.14314",
    params=LoRAParams,
    weight_bits=(4,),
    per_channel=False,
    symmetric=True,
    formats=("adapter",),
)
