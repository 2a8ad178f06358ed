"""Calibration data: deterministic windows, the token cache, local files and offline errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoo.data.calibration import calibration, draw, token_ids
from zoo.data.text import load_text
from zoo.errors import ZooError
from zoo.recipe.schema import CalibrationSpec


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from zoo.tiny.bases import builtin_path

    return AutoTokenizer.from_pretrained(builtin_path("tiny-llama3"))


def test_windows_are_deterministic_and_exact() -> None:
    ids = list(range(10_000))
    a, b, c = draw(ids, 8, 64, seed=0), draw(ids, 8, 64, seed=0), draw(ids, 8, 64, seed=1)
    assert a == b and a != c
    assert all(len(w) == 64 and w == list(range(w[0], w[0] + 64)) for w in a)


def test_text_shorter_than_a_window_is_an_error() -> None:
    with pytest.raises(ZooError, match="fewer than one window of 64"):
        draw(list(range(10)), 1, 64, 0)


def test_calibration_identity_and_token_cache(tokenizer, tmp_path: Path) -> None:
    spec = CalibrationSpec(dataset="pydoc", samples=4, seqlen=32, seed=3)
    first = calibration(spec, tokenizer)
    cached = list((Path(os.environ["ZOO_CACHE"]) / "tokens").glob("*.pt"))
    assert cached
    second = calibration(spec, tokenizer)
    assert first == second
    assert first.identity["dataset"] == "pydoc" and first.identity["samples"] == 4
    assert len(first.identity["tokens_sha256"]) == 64 and len(first.identity["text_sha256"]) == 64
    other = calibration(CalibrationSpec(dataset="pydoc", samples=4, seqlen=32, seed=4), tokenizer)
    assert other.identity["tokens_sha256"] != first.identity["tokens_sha256"]


def test_local_files(tokenizer, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello world " * 200)
    (tmp_path / "b.jsonl").write_text('{"text": "one two three"}\n\n{"text": "four"}\n')
    assert load_text("file", "train", tmp_path / "b.jsonl").text == "one two three\n\nfour"
    spec = CalibrationSpec(dataset="file", path="a.txt", samples=2, seqlen=16)
    assert len(calibration(spec, tokenizer, recipe_dir=tmp_path).windows) == 2
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(ZooError, match=r"bad.jsonl:2: expected a JSON object with a 'text' field"):
        load_text("file", "train", tmp_path / "bad.jsonl")


def test_hub_dataset_offline_names_the_fix() -> None:
    with pytest.raises(ZooError, match=r"cannot load dataset 'wikitext2'.*fix: run where the Hub is reachable"):
        load_text("wikitext2", "train")


def test_token_ids_skip_special_tokens(tokenizer) -> None:
    ids = token_ids("def f(): pass", tokenizer)
    assert tokenizer.bos_token_id not in ids
