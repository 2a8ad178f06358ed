"""``zoo eval`` measures the checkpoint a release publishes (#32): a native method's packed one, loaded
after ``import zoo.packed``, and says so in eval.json; its perplexity is the fake checkpoint's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import RECIPES, write

NAME = "tiny-llama3-billm-1.1bit"
PERPLEXITY_ONLY = "eval: {tasks: []}\n"  # the study's perplexity protocol alone: cheap


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(catalog, workdir) with NAME built: packed/ beside model/."""
    from zoo.catalog import load
    from zoo.quantize import build

    root = tmp_path_factory.mktemp("recipes")
    shutil.copytree(RECIPES / "_base", root / "_base")
    text = (RECIPES / f"{NAME}.yaml").read_text() + PERPLEXITY_ONLY
    write(root, NAME, text)
    work = tmp_path_factory.mktemp("work")
    build(load(NAME, root), work, root, device="cpu")
    return root, work


def test_eval_measures_the_packed_form_and_its_perplexity_is_the_fake_forms(built: tuple[Path, Path]) -> None:
    from zoo.catalog import load
    from zoo.evaluation.measure import measure
    from zoo.evaluation.run import evaluate
    from zoo.pipeline import RunOptions
    from zoo.records import BuildRecord, EvalRecord
    from zoo.workdir import Layout

    root, work = built
    recipe = load(NAME, root)
    layout = Layout(work, NAME)
    assert BuildRecord.require(layout).publishes_packed  # the recipe publishes packed/ (hub.weights' default)
    result = evaluate(recipe, work, root, device="cpu", limit=2)
    record = EvalRecord.require(layout)
    assert result.form == record.form == "packed"
    packed = record.metrics["ppl/pydoc"]
    fake = measure(layout.model, recipe, RunOptions(recipes=root, device="cpu", limit=2)).metrics["ppl/pydoc"]
    assert packed is not None and fake is not None
    assert abs(packed / fake - 1) < 1e-4, (packed, fake)
    base = record.baseline.metrics["ppl/pydoc"]
    assert base is not None and abs(packed / base - 1) > 1e-3  # the quantized weights were measured, not the base's
    assert evaluate(recipe, work, root, device="cpu", limit=2).status == "skipped"  # same form, same suite


def test_an_eval_json_before_the_form_was_recorded_still_reads() -> None:
    from zoo.records import EvalRecord

    record = {
        "name": "x", "created": "2026-01-01T00:00:00+00:00", "build_sha256": "a", "suite_sha256": "b",
        "recipe_sha256": None, "suite": {}, "limit": 2, "batch_size": 1, "seed": 0, "dtype": "float32",
        "device": "cpu", "duration_s": 1.0, "metrics": {"ppl/pydoc": 9.0}, "details": {},
        "baseline": {"metrics": {"ppl/pydoc": 8.0}}, "recovery": {"ppl/pydoc": 88.9},
    }  # fmt: skip
    parsed = EvalRecord.parse(record)
    assert parsed is not None and parsed.form is None
