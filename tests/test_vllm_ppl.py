"""Perplexity on the vLLM backend from prompt log-probabilities (issue #30): no HF load for a vLLM eval.

With vLLM's CPU build (``ZOO_VLLM_PYTHON``; skipped without it) the perplexity of the tiny 16-bit base
agrees with transformers' in bf16 within the tolerance zoo's serving check allows a 16-bit build. Without
vLLM: the child's answer is turned into the same number as transformers' formula, a missing vLLM is one
line with its fix, and tensor parallelism is what ``zoo plan`` gives the stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.test_serving import need_vllm


def _pydoc_ids(tokenizer: object) -> list[int]:
    from zoo.data import DATASETS
    from zoo.data.calibration import token_ids
    from zoo.data.text import load_text

    return token_ids(load_text("pydoc", DATASETS["pydoc"].eval_split).text, tokenizer)


def test_vllm_prompt_logprob_perplexity_agrees_with_transformers_on_a_16_bit_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_VLLM_PYTHON", need_vllm())
    import torch
    import transformers

    from zoo.evaluation.perplexity import perplexity
    from zoo.evaluation.vllm_ppl import perplexity as vllm_perplexity
    from zoo.serving.schemes import TOLERANCE
    from zoo.tiny.bases import builtin_path

    base = builtin_path("tiny-llama3")
    ids = _pydoc_ids(transformers.AutoTokenizer.from_pretrained(base))
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16).eval()
    hf = perplexity(model, ids, 256, max_windows=8)
    ours = vllm_perplexity(base, ids, 256, max_windows=8)
    assert (ours.windows, ours.tokens) == (hf.windows, hf.tokens) == (8, 8 * 256)
    tolerance, _ = TOLERANCE["16-bit"]
    assert abs(ours.value - hf.value) / hf.value <= tolerance, (ours.value, hf.value)


def _fake_vllm(tmp_path: Path, answer: dict[str, object]) -> Path:
    fake = tmp_path / "fake-python"
    hello = {"hello": True, "version": "9.9", "device": "cpu"}
    fake.write_text(f"#!/bin/sh\ncat > {tmp_path / 'job.json'}\necho '{json.dumps(hello)}'\necho '{json.dumps(answer)}'\n")
    fake.chmod(0o755)
    return fake


def test_window_losses_become_the_perplexity_transformers_formula_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.evaluation.vllm_ppl import perplexity

    monkeypatch.setenv("ZOO_VLLM_PYTHON", str(_fake_vllm(tmp_path, {"nll": [1.0, 2.0, 3.0]})))
    ppl = perplexity(tmp_path / "model", list(range(100)), 30, tensor_parallel_size=2)
    assert ppl.value == pytest.approx(math.exp(2.0)) and ppl.windows == 3 and ppl.tokens == 90
    job = json.loads((tmp_path / "job.json").read_text())
    assert job["windows"] == [list(range(i * 30, i * 30 + 30)) for i in range(3)]  # the windows transformers sees
    assert job["tensor_parallel_size"] == 2 and job["max_model_len"] == 31


def test_a_refusal_and_a_missing_vllm_are_one_line_with_a_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.errors import MissingExtraError, ZooError
    from zoo.evaluation import vllm_ppl
    from zoo.serving import vllm_process

    monkeypatch.setenv("ZOO_VLLM_PYTHON", str(_fake_vllm(tmp_path, {"error": "ValueError: no kernel\x1b[2J"})))
    with pytest.raises(ZooError, match="no kernel.*fix: evaluate with --backend hf") as e:
        vllm_ppl.perplexity(tmp_path / "model", list(range(100)), 30)
    assert "\x1b" not in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setattr(vllm_process, "python", lambda: None)
    with pytest.raises(MissingExtraError, match="ZOO_VLLM_PYTHON"):
        vllm_ppl.perplexity(tmp_path / "model", list(range(100)), 30)


def test_lm_evals_vllm_engine_is_shut_down_before_the_next_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """harness.evaluate shuts lm-eval's in-process vLLM engine down when its tasks are done (or fail)."""
    from types import SimpleNamespace

    from zoo.evaluation import harness

    calls: list[str] = []
    lm = SimpleNamespace(model=SimpleNamespace(llm_engine=SimpleNamespace(engine_core=SimpleNamespace(
        shutdown=lambda: calls.append("shutdown")))))  # fmt: skip
    monkeypatch.setattr(harness, "harness_model", lambda *a: lm)

    def boom(*a: object) -> dict[str, object]:
        raise RuntimeError("a task failed")

    monkeypatch.setattr(harness, "_run", boom)
    with pytest.raises(RuntimeError):
        harness.evaluate(None, None, ["arc_easy"], harness.BUILTIN_DATA, 1, 1, "vllm", Path("m"))
    assert calls == ["shutdown"] and lm.model is None


def test_a_vllm_eval_loads_no_hf_model_and_measures_what_transformers_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """``measure`` with ``--backend vllm`` on a perplexity-only suite: vLLM's child computes every perplexity
    (recorded as such), transformers never loads the checkpoint, and the number is transformers' in bf16."""
    monkeypatch.setenv("ZOO_VLLM_PYTHON", need_vllm())
    import transformers

    from tests.conftest import RECIPES
    from zoo.catalog import load
    from zoo.evaluation import measure as measuring
    from zoo.pipeline.options import RunOptions
    from zoo.serving.schemes import TOLERANCE
    from zoo.tiny.bases import builtin_path

    recipe = load("tiny-llama3-rtn-4bit", RECIPES)
    recipe = recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"tasks": [], "perplexity": ["pydoc"]})})
    loaded: list[str] = []
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loaded.append("hf") or real(*a, **k)
    )
    options = RunOptions(recipes=RECIPES, device="cpu", backend="vllm", limit=4)
    got = measuring.measure(builtin_path("tiny-llama3"), recipe, options)
    assert loaded == [] and got.details["perplexity"]["pydoc"]["backend"] == "vllm"
    hf = measuring.measure(builtin_path("tiny-llama3"), recipe, options.but(backend="hf"))
    tolerance, _ = TOLERANCE["16-bit"]
    ours, theirs = got.metrics["ppl/pydoc"], hf.metrics["ppl/pydoc"]
    assert ours is not None and theirs is not None and abs(ours - theirs) / theirs <= tolerance, (ours, theirs)
