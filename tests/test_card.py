"""zoo card: the golden card, every catalog recipe renders, front matter round-trips, the plot, and
the table's numbers equal eval.json's."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tests.conftest import RECIPES
from zoo.card import render
from zoo.card.render import _fmt
from zoo.catalog import load, recipe_paths
from zoo.evaluation.run import evaluate
from zoo.recipe import Recipe, load_recipe

GOLDEN = Path(__file__).parent / "golden"
CATALOG = [load_recipe(p) for p in recipe_paths(RECIPES)]


def synthetic(recipe: Recipe, workdir: Path, evaluated: bool = True) -> None:
    """A fixed build.json and eval.json, as zoo build / zoo eval would write them."""
    folder = workdir / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    build = {
        "name": recipe.name,
        "created": "2026-01-02T03:04:05+00:00",
        "recipe_sha256": "ab" * 32,
        "device": "cuda",
        "gpu": {"name": "NVIDIA H100 80GB HBM3", "peak_bytes": 21_000_000_000},
        "timings_s": {"total": 1234.5},
        "peak_host_rss_bytes": 40_000_000_000,
        "base": {"repo_id": recipe.base.repo_id, "commit": "c" * 40},
        "versions": {"torch": "2.13.0", "transformers": "5.17.0", "zoo": "0.1.0"},
        "calibration": {"tokens_sha256": "d" * 64},
        "files": [{"path": "model.safetensors", "size": 5, "sha256": "e" * 64}],
        "total_bytes": 5_700_000_000,
    }
    (folder / "build.json").write_text(json.dumps(build))
    if not evaluated:
        return
    metrics = {f"ppl/{d}": 6.5 + i for i, d in enumerate(recipe.eval.perplexity)}
    metrics.update({f"{t}/acc": 0.61 + i / 100 for i, t in enumerate(recipe.eval.tasks)})
    base = {k: (v - 0.4 if k.startswith("ppl/") else v + 0.02) for k, v in metrics.items()}
    rec = {k: (100 * base[k] / v if k.startswith("ppl/") else 100 * v / base[k]) for k, v in metrics.items()}
    ev = {
        "name": recipe.name,
        "limit": None,
        "device": "cuda",
        "dtype": "bfloat16",
        "batch_size": 8,
        "suite": {"versions": {"lm-eval": "0.4.13"}},
        "metrics": metrics,
        "baseline": {"metrics": base},
        "recovery": rec,
    }
    (folder / "eval.json").write_text(json.dumps(ev))


def table(readme: str) -> dict[str, list[str]]:
    """The evaluation table: metric label -> [base, this model, recovery]."""
    section = readme.split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("Metric", "---"):
            rows[cells[0]] = cells[1:]
    return rows


def test_golden_card(tmp_path: Path) -> None:
    recipe = load("llama3-8b-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    result = render(recipe, CATALOG, tmp_path)
    text = result.readme.read_text()
    golden = GOLDEN / "llama3-8b-gptq-4bit.md"
    if os.environ.get("ZOO_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("recipe", CATALOG, ids=[r.name for r in CATALOG])
def test_every_recipe_renders(recipe: Recipe, tmp_path: Path) -> None:
    synthetic(recipe, tmp_path)
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    assert text.startswith("---\n") and f"# {recipe.name}\n" in text and "missing |" not in text.split("## Other")[0]


def test_front_matter_round_trips(tmp_path: Path) -> None:
    recipe = load("llama3-70b-awq-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    readme = render(recipe, CATALOG, tmp_path).readme
    card = ModelCard.load(readme)
    d = card.data
    assert d.base_model == "meta-llama/Meta-Llama-3-70B" and d.base_model_relation == "quantized"
    assert d.license == "llama3" and d.pipeline_tag == "text-generation" and d.library_name == "transformers"
    assert {"zoo", "awq", "3-bit", "compressed-tensors", "llama3"} <= set(d.tags)
    assert d.datasets == ["Salesforce/wikitext"]
    ev = json.loads((tmp_path / recipe.name / "eval.json").read_text())
    got = {(r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in d.eval_results}
    assert got[("Salesforce/wikitext", "wikitext-2-raw-v1", "perplexity")] == round(ev["metrics"]["ppl/wikitext2"], 4)
    assert got[("allenai/ai2_arc", "ARC-Easy", "acc")] == round(ev["metrics"]["arc_easy/acc"], 4)
    assert len(d.eval_results) == len(ev["metrics"])
    import yaml
    from huggingface_hub import parse_eval_result_entries

    entries = parse_eval_result_entries(yaml.safe_load((readme.parent / ".eval_results" / "zoo.yaml").read_text()))
    assert {e.dataset_id for e in entries} >= {"Salesforce/wikitext", "allenai/ai2_arc", "cais/mmlu"}
    assert len(entries) == len(ev["metrics"])


def test_table_numbers_equal_eval_json(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    rows = table(render(recipe, CATALOG, tmp_path).readme.read_text())
    ev = json.loads((tmp_path / recipe.name / "eval.json").read_text())
    assert len(rows) == len(ev["metrics"])
    assert rows["WikiText2 perplexity"] == [
        _fmt(ev["baseline"]["metrics"]["ppl/wikitext2"]),
        _fmt(ev["metrics"]["ppl/wikitext2"]),
        _fmt(ev["recovery"]["ppl/wikitext2"]),
    ]
    assert rows["mmlu (acc)"][1] == _fmt(ev["metrics"]["mmlu/acc"])


def test_unevaluated_variant_says_missing(tmp_path: Path) -> None:
    recipe = load("llava-next-8b-gptq-2bit", RECIPES)
    synthetic(recipe, tmp_path, evaluated=False)
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    assert "Evaluation results are missing" in text and "Results missing: run `zoo eval llava-next-8b-gptq-2bit`" in text
    assert "| Metric |" not in text
    assert "2-bit LLaVA-Next collapses" in text and "AutoModelForImageTextToText" in text
    assert ModelCard.load(tmp_path / recipe.name / "card" / "README.md").data.eval_results is None


def test_plot_is_a_png_with_every_method(tmp_path: Path) -> None:
    recipe = load("llama3-8b-gptq-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    result = render(recipe, CATALOG, tmp_path)
    assert result.plot is not None and result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(result.plot).size == (640, 400)
    series = json.loads((result.readme.parent / "card.json").read_text())["plot_series"]
    assert series == sorted(["AWQ", "BiLLM", "DB-LLM", "GPTQ", "PB-LLM", "QuIP", "RTN"])


def test_card_after_real_build_and_eval(built, workdir: Path) -> None:
    built("tiny-llama3-gptq-4bit")
    evaluate(load("tiny-llama3-gptq-4bit", RECIPES), workdir, RECIPES, device="cpu", limit=8)
    result = render(load("tiny-llama3-gptq-4bit", RECIPES), CATALOG, workdir)
    text = result.readme.read_text()
    assert "limited to 8 items per task" in text
    ev = json.loads((workdir / "tiny-llama3-gptq-4bit" / "eval.json").read_text())
    rows = table(text)
    assert rows["pydoc topics (held-out) perplexity"][1] == _fmt(ev["metrics"]["ppl/pydoc"])
    assert ModelCard.load(result.readme).data.model_name == "tiny-llama3-gptq-4bit"
    assert re.search(r"\*\*tiny-llama3-gptq-4bit\*\* \(this\) \| GPTQ \| W4 g128 \| [0-9.]+ \|", text)
    again = render(load("tiny-llama3-gptq-4bit", RECIPES), CATALOG, workdir)
    assert again.status == "skipped"
