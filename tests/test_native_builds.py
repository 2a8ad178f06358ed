"""zoo's own methods as the tiny recipes build them, through ``zoo build`` (apart from test_native.py, whose
tests work on one Linear: the builds are the slow part, and on their own file they run on a worker of their own)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import RECIPES
from tests.test_native import _distinct_per_row_block


def test_quip_recipe_builds_reloads_and_generates(built) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = built("tiny-llama3-quip-2bit-pc")
    record = json.loads((folder / "quantization.json").read_text())
    assert record["weights"]["variant"] == "authors"
    assert 2 < record["bits_per_weight"] <= 2 + 17 / 64  # a 16-bit factor per input column, rows >= 64
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    x = tok("The while statement", return_tensors="pt")
    assert model.generate(**x, max_new_tokens=6, do_sample=False).shape[1] == x["input_ids"].shape[1] + 6
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert (RECIPES / "tiny-llama3-quip-2bit-pc.yaml").exists()


@pytest.mark.parametrize(
    "name",
    [
        "tiny-llama3-quip-2bit-pc",
        "tiny-llama3-pbllm-2bit",
        "tiny-llama3-billm-1.1bit",
        "tiny-llama3-dbllm-2bit",
        "tiny-llama3-slimllm-2bit",
    ],
)
def test_native_recipes_build_with_their_bits(name: str, built) -> None:
    from transformers import AutoModelForCausalLM

    from zoo.catalog import load

    folder = built(name)
    record = json.loads((folder / "quantization.json").read_text())
    target = load(name, RECIPES).weights.bits
    assert abs(record["code_bits_per_weight"] - target) <= 0.05, record
    assert record["bits_per_weight"] > record["code_bits_per_weight"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert torch.isfinite(model(input_ids=torch.tensor([[1, 2, 3, 4]])).logits).all()


def test_dbllm_recipe_distils_and_keeps_four_levels_per_row_block(built) -> None:
    from transformers import AutoModelForCausalLM

    folder = built("tiny-llama3-dbllm-2bit")
    weights = json.loads((folder / "quantization.json").read_text())["weights"]
    assert weights["distillation"] is True and weights["distillation_steps"] == 2 * 32  # 2 epochs of 32 windows
    assert weights["distillation_kl"]["after"] < weights["distillation_kl"]["before"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    linears = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n]
    assert len(linears) == 4 * 7 and all(max(_distinct_per_row_block(m.weight.data)) <= 4 for m in linears)
