"""LoRA fine-tuning parameters (QLoRA's and IR-QLoRA's ``params:``), owned by the machinery that uses
them: ``zoo.methods.qlora`` / ``irqlora`` declare them as their params model, and ``build.py`` /
``train.py`` read them typed without importing any method."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from zoo.recipe.params import MethodParams


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
