"""The built-in tiny bases: real LLaMA-3 / LLaVA-Next architectures that learned something."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.tiny import corpus
from zoo.tiny.bases import builtin_path


@pytest.fixture(scope="module")
def llama():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = builtin_path("tiny-llama3")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def _ppl(model, ids: torch.Tensor, seq: int = 256) -> float:
    n = ids.numel() // seq
    x = ids[: n * seq].view(n, seq)
    with torch.no_grad():
        loss = model(input_ids=x, labels=x).loss
    return math.exp(loss.item())


def test_llama3_architecture_and_tokenizer(llama) -> None:
    model, tok = llama
    cfg = model.config
    assert cfg.model_type == "llama" and cfg.rope_parameters["rope_theta"] == 500000.0
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # GQA
    for dim in (cfg.hidden_size, cfg.intermediate_size):
        assert dim % 128 == 0  # group size 128 divides every input size
    assert cfg.hidden_size % 64 == 0 and cfg.intermediate_size % 64 == 0  # AWQ clipping on outputs
    assert tok.bos_token == "<|begin_of_text|>" and tok.eos_token == "<|end_of_text|>"
    ids = tok("Hello world")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True) == "Hello world"
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_learned_its_text(llama) -> None:
    model, tok = llama
    ids = torch.tensor(tok(corpus.heldout_text())["input_ids"])
    ppl = _ppl(model, ids)
    shuffled = _ppl(model, ids[torch.randperm(ids.numel(), generator=torch.Generator().manual_seed(0))])
    assert ppl < model.config.vocab_size / 20
    assert ppl * 5 < shuffled


def test_llama3_generates(llama) -> None:
    model, tok = llama
    x = tok("The for statement", return_tensors="pt")
    out = model.generate(**x, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0, x["input_ids"].shape[1] :])
    assert out.shape[1] == x["input_ids"].shape[1] + 12 and text.strip()


def test_llava_next_loads_and_sees_an_image() -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = builtin_path("tiny-llava-next")
    assert builtin_path("tiny-llava-next") == path  # assembled once, then reused
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    proc = AutoProcessor.from_pretrained(path)
    assert model.config.model_type == "llava_next"
    image = Image.new("RGB", (40, 56), (200, 30, 30))
    x = proc(images=image, text="<image>\nWhat is in the picture?", return_tensors="pt")
    assert (x["input_ids"] == model.config.image_token_id).sum() > 1
    with torch.no_grad():
        logits = model(**x).logits
    assert torch.isfinite(logits).all()
    out = model.generate(**x, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == x["input_ids"].shape[1] + 5
