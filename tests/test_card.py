"""zoo card: the golden card, every catalog recipe renders, front matter round-trips, the plot, the
table's numbers equal eval.json's, and (issue #21) a card never shows numbers of another build, says
how small or limited its evaluation was, and draws only what was measured or published."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tests.conftest import RECIPES
from zoo.card import render
from zoo.card.render import _fmt
from zoo.catalog import load, recipe_paths
from zoo.errors import NotReadyError
from zoo.evaluation.run import evaluate
from zoo.recipe import Recipe, load_recipe
from zoo.records import Baseline, BuildRecord, EvalRecord, FileEntry
from zoo.workdir import Layout, sha256_file

GOLDEN = Path(__file__).parent / "golden"
CATALOG = [load_recipe(p) for p in recipe_paths(RECIPES)]


def synthetic(
    recipe: Recipe,
    workdir: Path,
    evaluated: bool = True,
    limit: int | None = None,
    metrics: dict[str, float] | None = None,
    base: dict[str, float] | None = None,
) -> None:
    """A fixed build.json (over a real 5-byte checkpoint file) and eval.json, as zoo build / zoo eval write them."""
    from zoo.evaluation.run import recovery
    from zoo.records import recipe_sha256

    folder = workdir / recipe.name
    (folder / "model").mkdir(parents=True, exist_ok=True)
    weights = folder / "model" / "model.safetensors"
    weights.write_bytes(b"zoo\x00" + recipe.name[:1].encode())
    layout = Layout(workdir, recipe.name)
    BuildRecord(
        name=recipe.name,
        zoo_version="0.1.0",
        created="2026-01-02T03:04:05+00:00",
        recipe_sha256=recipe_sha256(recipe),
        recipe=recipe.model_dump(mode="json"),
        base={"repo_id": recipe.base.repo_id, "commit": "c" * 40},
        method={"name": recipe.method, "format": recipe.format},
        seed=0,
        calibration={"tokens_sha256": "d" * 64},
        device="cuda",
        host_memory_limit_bytes=None,
        versions={"torch": "2.13.0", "transformers": "5.17.0", "zoo": "0.1.0"},
        timings_s={"total": 1234.5},
        peak_host_rss_bytes=40_000_000_000,
        gpu={"name": "NVIDIA H100 80GB HBM3", "peak_bytes": 21_000_000_000},
        total_bytes=5_700_000_000,
        files=(FileEntry(path="model.safetensors", size=weights.stat().st_size, sha256=sha256_file(weights)),),
    ).write(layout)
    if not evaluated:
        return
    if metrics is None:
        metrics = {f"ppl/{d}": 6.5 + i for i, d in enumerate(recipe.eval.perplexity)}
        metrics.update({f"{t}/acc": 0.61 + i / 100 for i, t in enumerate(recipe.eval.tasks)})
    if base is None:
        base = {k: (v - 0.4 if k.startswith("ppl/") else v + 0.02) for k, v in metrics.items()}
    EvalRecord(
        name=recipe.name,
        created="2026-01-02T04:05:06+00:00",
        build_sha256=sha256_file(layout.build_json),
        suite_sha256="e" * 64,
        recipe_sha256=recipe_sha256(recipe),
        suite={"versions": {"lm-eval": "0.4.13"}},
        limit=limit,
        batch_size=8,
        seed=0,
        dtype="bfloat16",
        device="cuda",
        duration_s=600.0,
        metrics=dict(metrics),
        details={
            "perplexity": {d: {"windows": limit or 140, "seqlen": recipe.eval.seqlen} for d in recipe.eval.perplexity},
            "tasks": {t: {"samples": min(limit or 10, 10)} for t in recipe.eval.tasks},
        },
        baseline=Baseline(metrics=dict(base)),
        recovery=recovery(dict(metrics), dict(base)),
    ).write(layout)


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
    shots = {r.dataset_type: (r.dataset_args or {}).get("num_few_shot") for r in d.eval_results}
    assert shots["cais/mmlu"] == 5 and shots["allenai/ai2_arc"] == 0  # MMLU's 5-shot, read back as such
    assert "num_few_shot" not in str([r.dataset_args for r in d.eval_results if r.metric_type == "perplexity"])
    assert {r.source_name for r in d.eval_results} == {f"zoo 0.1.0 eval, {ev['created'][:10]}"}
    import yaml
    from huggingface_hub import parse_eval_result_entries

    files = sorted((readme.parent / ".eval_results").iterdir())
    entries = {f.name: parse_eval_result_entries(yaml.safe_load(f.read_text())) for f in files}
    assert set(entries) >= {"ai2_arc.yaml", "mmlu.yaml"}  # one file per benchmark: a bad entry spoils only its own
    for name, parsed in entries.items():
        assert len({e.dataset_id for e in parsed}) == 1 and name == parsed[0].dataset_id.split("/")[-1] + ".yaml"
        assert all(e.date == ev["created"][:10] and e.source_name and e.source_url for e in parsed)
    flat = [e for parsed in entries.values() for e in parsed]
    assert "Salesforce/wikitext" not in {e.dataset_id for e in flat}  # perplexity is in model-index only
    assert len(flat) == len([k for k in ev["metrics"] if not k.startswith("ppl/")])
    assert {e.task_id for e in entries["ai2_arc.yaml"]} == {"ARC-Easy", "ARC-Challenge"}


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
    methods = ["AWQ (g128)", "AWQ (per channel)", "BiLLM (g128)", "DB-LLM (g128)", "GPTQ (g128)", "GPTQ (per channel)",
               "PB-LLM (g128)", "SliM-LLM (g128)"]  # fmt: skip
    assert series == sorted([*methods, "QuIP (per channel)", "RTN (g128)", "RTN (per channel)"])


def test_card_after_real_build_and_eval(built, workdir: Path, tmp_path: Path) -> None:
    built("tiny-llama3-gptq-4bit")
    evaluate(load("tiny-llama3-gptq-4bit", RECIPES), workdir, RECIPES, device="cpu", limit=8)
    result = render(load("tiny-llama3-gptq-4bit", RECIPES), CATALOG, workdir)
    text = result.readme.read_text()
    assert "limited to 8 items per task" in text
    assert "Quick run only (`zoo eval --limit 8`" in text and ", recovering" not in text.split("## Model overview")[0]
    assert "zoo eval tiny-llama3-gptq-4bit --limit 8" in text and 'tokenizer("The for statement is used to"' in text
    record = json.loads((result.readme.parent / "card.json").read_text())
    assert record["build_sha256"] == sha256_file(workdir / "tiny-llama3-gptq-4bit" / "build.json")
    assert record["eval_sha256"] == sha256_file(workdir / "tiny-llama3-gptq-4bit" / "eval.json")
    ev = json.loads((workdir / "tiny-llama3-gptq-4bit" / "eval.json").read_text())
    rows = table(text)
    assert rows["pydoc topics (held-out) perplexity"][1] == _fmt(ev["metrics"]["ppl/pydoc"])
    assert ModelCard.load(result.readme).data.model_name == "tiny-llama3-gptq-4bit"
    assert re.search(r"\*\*tiny-llama3-gptq-4bit\*\* \(this\) \| GPTQ \| W4 g128 \| [0-9.]+ \|", text)
    again = render(load("tiny-llama3-gptq-4bit", RECIPES), CATALOG, workdir)
    assert again.status == "skipped"
    # the same build re-recorded (as a rebuild would) without re-evaluating: exit 8 naming zoo eval, old card kept
    copy = tmp_path / "work"
    shutil.copytree(workdir / "tiny-llama3-gptq-4bit", copy / "tiny-llama3-gptq-4bit")
    build_json = copy / "tiny-llama3-gptq-4bit" / "build.json"
    build_json.write_text(json.dumps(json.loads(build_json.read_text()), indent=1))
    with pytest.raises(NotReadyError, match="measured an earlier build.*fix: zoo eval tiny-llama3-gptq-4bit") as err:
        render(load("tiny-llama3-gptq-4bit", RECIPES), CATALOG, copy)
    assert err.value.exit_code == 8
    assert (copy / "tiny-llama3-gptq-4bit" / "card" / "README.md").read_text() == text


# --- issue #21: never publish numbers that do not belong to the build ---------------------------


def card_record(workdir: Path, name: str) -> dict:
    return json.loads((workdir / name / "card" / "card.json").read_text())


def siblings_section(text: str) -> str:
    return text.split("## Other variants", 1)[1].split("\n## ", 1)[0]


def test_card_records_the_hashes_of_what_it_shows(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    render(recipe, CATALOG, tmp_path)
    record = card_record(tmp_path, recipe.name)
    assert record["build_sha256"] == sha256_file(tmp_path / recipe.name / "build.json")
    assert record["eval_sha256"] == sha256_file(tmp_path / recipe.name / "eval.json")
    other = load("llama3-8b-rtn-4bit", RECIPES)
    synthetic(other, tmp_path, evaluated=False)
    render(other, CATALOG, tmp_path)
    assert card_record(tmp_path, other.name)["eval_sha256"] is None


def test_rebuilt_but_not_reevaluated_refuses_and_keeps_the_old_card(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    old = render(recipe, CATALOG, tmp_path).readme.read_text()
    build_json = tmp_path / recipe.name / "build.json"
    rebuilt = json.loads(build_json.read_text())
    rebuilt["created"] = "2026-02-03T04:05:06+00:00"  # a new build of the same checkpoint bytes
    build_json.write_text(json.dumps(rebuilt))
    with pytest.raises(NotReadyError, match=r"eval\.json measured an earlier build.*fix: zoo eval llama3-8b-rtn-3bit") as err:
        render(recipe, CATALOG, tmp_path, force=True)
    assert err.value.exit_code == 8
    assert (tmp_path / recipe.name / "card" / "README.md").read_text() == old


def test_changed_checkpoint_refuses(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    weights = tmp_path / recipe.name / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[::-1] + b"x")
    with pytest.raises(NotReadyError, match="no longer matches build.json.*zoo build llama3-8b-rtn-3bit --force"):
        render(recipe, CATALOG, tmp_path)


def test_not_built_refuses(tmp_path: Path) -> None:
    with pytest.raises(NotReadyError, match="not built.*fix: zoo build llama3-8b-rtn-3bit"):
        render(load("llama3-8b-rtn-3bit", RECIPES), CATALOG, tmp_path)
    assert not (tmp_path / "llama3-8b-rtn-3bit").exists()


def test_build_of_an_older_recipe_refuses(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    edited = recipe.model_copy(update={"calibration": recipe.calibration.model_copy(update={"samples": 64})})
    with pytest.raises(NotReadyError, match="older recipe.*fix: zoo build llama3-8b-rtn-3bit"):
        render(edited, CATALOG, tmp_path)


def test_stale_sibling_eval_counts_as_not_evaluated(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    sibling = load("tiny-llama3-awq-3bit", RECIPES)
    synthetic(sibling, tmp_path, metrics={"ppl/pydoc": 77.5, "zero_shot_avg/acc": 0.41}, base={"ppl/pydoc": 50.0})
    current = siblings_section(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert "| 77.5 | 0.41 |" in current
    build_json = tmp_path / sibling.name / "build.json"
    build_json.write_text(build_json.read_text() + "\n")  # the sibling was rebuilt; its eval.json is of the old build
    stale = siblings_section(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert "77.5" not in stale and "0.41" not in stale
    assert "| tiny-llama3-awq-3bit | AWQ | W3 g128 | 5700 | not evaluated | not evaluated |" in stale


def test_card_holds_the_recipe_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card_render = importlib.import_module("zoo.card.render")  # zoo.card.render the attribute is the function

    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    seen: list[dict] = []
    real = card_render.plot

    def spy(*args, **kwargs):
        seen.append(json.loads((tmp_path / recipe.name / ".zoo.lock").read_text()))
        return real(*args, **kwargs)

    monkeypatch.setattr(card_render, "plot", spy)
    render(recipe, CATALOG, tmp_path)
    assert seen and seen[0]["stage"] == "card" and seen[0]["pid"] == os.getpid()
    assert not (tmp_path / recipe.name / ".zoo.lock").exists()


# --- headline honesty ----------------------------------------------------------------------------


def summary(text: str) -> str:
    return text.split("---\n# ", 1)[1].split("## Model overview", 1)[0]


def test_headline_of_a_limited_run_says_quick_run_and_claims_no_recovery(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    metrics = {"ppl/wikitext2": 8.0, "zero_shot_avg/acc": 0.5}
    synthetic(recipe, tmp_path, limit=2, metrics=metrics, base={"ppl/wikitext2": 8.0, "zero_shot_avg/acc": 0.5})
    head = summary(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert "Quick run only (`zoo eval --limit 2`: 2 items per task, 2 perplexity windows), not a full evaluation" in head
    assert "recovering" not in head and "WikiText2 perplexity 8 against 8 for the 16-bit base (100% on this sample)" in head


def test_headline_with_offline_tasks_leads_with_perplexity_and_says_so(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    metrics = {"ppl/pydoc": 20.0, "arc_easy/acc": 0.3, "zero_shot_avg/acc": 0.3}
    synthetic(recipe, tmp_path, metrics=metrics, base={"ppl/pydoc": 19.0, "arc_easy/acc": 0.3, "zero_shot_avg/acc": 0.3})
    head = summary(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert "recovering 95% of the 16-bit model's pydoc topics (held-out) perplexity" in head
    assert "zoo's small offline task files (10 items per task), not the real benchmarks" in head
    assert "zero-shot average" not in head


def test_headline_from_offline_tasks_alone_is_never_a_recovery_claim() -> None:
    from zoo.card.context import headline, results_rows

    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    recipe = recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"perplexity": []})})
    ev = EvalRecord(
        name=recipe.name, created="2026-01-01T00:00:00+00:00", build_sha256="0" * 64, suite_sha256="0" * 64,
        recipe_sha256=None, suite={}, limit=None, batch_size=1, seed=0, dtype="float32", device="cpu", duration_s=1.0,
        metrics={"zero_shot_avg/acc": 0.3},
        baseline=Baseline(metrics={"zero_shot_avg/acc": 0.3}),
        recovery={"zero_shot_avg/acc": 100.0},
        details={"tasks": {"arc_easy": {"samples": 10}}},
    )  # fmt: skip
    text = headline(recipe, ev, results_rows(ev))
    assert text is not None and "recovering" not in text
    assert "On zoo's small offline task files: zero-shot average (acc) 0.3 against 0.3 for the 16-bit base" in text


def test_headline_of_a_full_real_run_claims_zero_shot_recovery(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(
        recipe,
        tmp_path,
        metrics={"ppl/wikitext2": 8.0, "zero_shot_avg/acc": 0.6},
        base={"ppl/wikitext2": 6.0, "zero_shot_avg/acc": 0.68},
    )
    head = summary(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert "**RTN W3 g128 quantization of meta-llama/Meta-Llama-3-8B, recovering 88.24% of the 16-bit model's zero-shot" in head
    assert "Quick run" not in head and "offline" not in head


def test_zero_on_both_sides_says_base_is_zero(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    metrics = {"ppl/pydoc": 20.0, "mmlu_humanities/acc": 0.0, "arc_easy/acc": 0.3}
    synthetic(recipe, tmp_path, metrics=metrics, base={"ppl/pydoc": 19.0, "mmlu_humanities/acc": 0.0, "arc_easy/acc": 0.0})
    rows = table(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert rows["mmlu_humanities (acc)"] == ["0", "0", "n/a: base is 0"]
    assert rows["arc_easy (acc)"][2] == "n/a: base is 0"
    assert rows["pydoc topics (held-out) perplexity"][2] == _fmt(100 * 19.0 / 20.0)


# --- siblings, reproduce, method, prompt -----------------------------------------------------------


def test_sibling_table_shows_only_variants_with_data(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    section = siblings_section(render(recipe, CATALOG, tmp_path).readme.read_text())
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Variant")]
    assert rows == [line for line in rows if "tiny-llama3-gptq-4bit" in line] and len(rows) == 1
    others = sum(1 for r in CATALOG if r.base_name == "tiny-llama3") - 1
    assert f"{others} other catalog variants of tiny-llama3 have no build, evaluation or study number here yet" in section
    assert "missing" not in section and "huggingface.co" not in section


def test_sibling_repos_are_linked_only_when_pushed_from_here(tmp_path: Path) -> None:
    from zoo.records import PushRecord
    from zoo.workdir import Layout

    recipe = load("llama3-8b-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    synthetic(load("llama3-8b-rtn-3bit", RECIPES), tmp_path, evaluated=False)
    synthetic(load("llama3-8b-rtn-4bit", RECIPES), tmp_path, evaluated=False)
    first = render(recipe, CATALOG, tmp_path)
    assert "](https://" not in siblings_section(first.readme.read_text())  # built, never pushed: no link
    PushRecord(
        repo_id="someone/llama3-8b-rtn-3bit",
        revision="main",
        commit="a" * 40,
        tag="release-000000000001",
        build_sha256="0" * 64,
        endpoint="https://huggingface.co",
        pushed="2026-12-01T00:00:00+00:00",
    ).write(Layout(tmp_path, "llama3-8b-rtn-3bit"))
    section = siblings_section(render(recipe, CATALOG, tmp_path).readme.read_text())  # a sibling's push re-renders
    links = re.findall(r"\]\((https://[^)]+)\)", section)
    assert links == ["https://huggingface.co/someone/llama3-8b-rtn-3bit"]
    assert "| llama3-8b-awq-3bit | AWQ | W3 g128 | not built here | 8.2 (study) | 64.4% (study) |" in section
    # the study has no SliM-LLM row: its number is SliM-LLM's own paper's, marked as such
    assert "| llama3-8b-slimllm-2bit | SliM-LLM | W2 g128 | not built here | 39.66 (paper) | not evaluated |" in section
    synthetic(load("llava-next-8b-gptq-4bit", RECIPES), tmp_path)
    llava = siblings_section(render(load("llava-next-8b-gptq-4bit", RECIPES), CATALOG, tmp_path).readme.read_text())
    # variants without a build, an evaluation or a published number are counted, not listed
    assert "llava-next-8b-rtn-4bit" not in llava and "other catalog variants of" in llava


def test_reproduce_section_uses_a_checkout(tmp_path: Path) -> None:
    recipe = load("llama3-8b-irqlora-4bit", RECIPES)
    synthetic(recipe, tmp_path, limit=4)
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    assert "pip install zoo" not in text
    section = text.split("## How to reproduce", 1)[1]
    assert "from a checkout of zoo at version 0.1.0" in section and 'pip install -e ".[eval]"\n' in section
    assert "zoo build llama3-8b-irqlora-4bit\nzoo eval llama3-8b-irqlora-4bit --limit 4 --batch-size 8\nzoo card" in section


@pytest.mark.parametrize("name", ["llama3-8b-rtn-3bit", "llama3-8b-gptq-4bit", "tiny-llama3-gptq-4bit"])
def test_method_row_has_no_nested_brackets(name: str, tmp_path: Path) -> None:
    from zoo.methods import METHODS

    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    overview = render(recipe, CATALOG, tmp_path).readme.read_text().split("## Model overview", 1)[1].split("\n## ", 1)[0]
    spec = METHODS.get(recipe.method)
    assert f"| Method | {spec.title} |" in overview and f"| Method reference | {spec.paper} |" in overview
    assert not re.search(r"\([^()\n]*\([^()\n]*\)\)", overview)


@pytest.mark.parametrize(
    ("name", "prompt", "not_prompt"),
    [
        ("tiny-llama3-gptq-4bit", "The for statement is used to", "The capital of France is"),
        ("llama3-8b-gptq-4bit", "The capital of France is", "The for statement"),
    ],
)
def test_example_prompt_suits_the_base(name: str, prompt: str, not_prompt: str, tmp_path: Path) -> None:
    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    assert f'tokenizer("{prompt}", return_tensors="pt")' in text and not_prompt not in text


# --- the plot ---------------------------------------------------------------------------------------


def test_one_point_draws_no_plot_and_the_card_says_so(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    result = render(recipe, CATALOG, tmp_path)
    text = result.readme.read_text()
    assert result.plot is None and not (result.readme.parent / "quality_vs_bits.png").exists()
    assert "No plot: fewer than two weight-only variants of tiny-llama3 have a perplexity here" in text
    assert "quality_vs_bits.png" not in text
    assert card_record(tmp_path, recipe.name)["plot"] is None


def test_small_gap_is_plotted_as_recovery_on_a_plain_linear_axis(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path, metrics={"ppl/pydoc": 56.34}, base={"ppl/pydoc": 56.25})
    synthetic(load("tiny-llama3-awq-3bit", RECIPES), tmp_path, metrics={"ppl/pydoc": 56.30}, base={"ppl/pydoc": 56.25})
    result = render(recipe, CATALOG, tmp_path)
    assert result.plot is not None and result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = card_record(tmp_path, recipe.name)["plot"]
    assert drawn["y"] == "recovery %" and drawn["scale"] == "linear"
    lo, hi = drawn["ylim"]
    assert hi - lo >= 5 and lo < 99.8 and hi > 100  # a 0.16% gap is a small gap, not the whole height
    assert drawn["yticks"] and all(re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", t) for t in drawn["yticks"])
    assert drawn["legend"] == ["AWQ (g128)", "GPTQ (g128)", "16-bit base (100%)", "this model (tiny-llama3-gptq-4bit)"]
    assert "study" not in drawn["title"] and "hollow" not in drawn["title"] and "2 measured by zoo" in drawn["title"]
    assert "quality_vs_bits.png" in result.readme.read_text()


def test_plot_with_study_points_uses_log_for_wide_ranges_and_draws_them_hollow(tmp_path: Path) -> None:
    recipe = load("llama3-8b-gptq-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    drawn = card_record(tmp_path, recipe.name)["plot"] if render(recipe, CATALOG, tmp_path).plot else None
    assert drawn is not None and drawn["y"] == "perplexity" and drawn["scale"] == "log"
    assert drawn["measured"] == 1 and drawn["study"] > 5 and "published by the study (hollow)" in drawn["title"]
    assert all("e+" not in t and "10^" not in t and "$" not in t for t in drawn["yticks"])
    assert "16-bit base (measured by zoo)" in drawn["legend"]


def test_plot_legend_names_only_what_is_drawn(tmp_path: Path) -> None:
    from zoo.card.plot import plot
    from zoo.variant.points import Point

    points = [Point("a", "GPTQ (g128)", 4, 7.0, None, False, False), Point("b", "GPTQ (g128)", 3, 8.0, None, False, False)]
    drawn = plot(points, "WikiText2", "not-drawn", "base", tmp_path / "p.png")
    assert drawn is not None and drawn["legend"] == ["GPTQ (g128)"] and drawn["scale"] == "linear"
    assert drawn["title"].endswith("2 published by the study (hollow)")
    assert plot(points[:1], "WikiText2", "a", "base", tmp_path / "q.png") is None and not (tmp_path / "q.png").exists()


# --- interrupted cards (#20) -----------------------------------------------------------------------


def card_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_interrupt_mid_card_keeps_the_previous_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card_render = importlib.import_module("zoo.card.render")  # zoo.card.render the attribute is the function

    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    render(recipe, CATALOG, tmp_path)
    before = card_files(tmp_path / recipe.name / "card")

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(card_render, "eval_result_files", interrupted)  # after README.md and the plot are written
    with pytest.raises(KeyboardInterrupt):
        render(recipe, CATALOG, tmp_path, force=True)
    assert card_files(tmp_path / recipe.name / "card") == before
    assert sorted(p.name for p in (tmp_path / recipe.name).iterdir()) == [
        ".verified.json",
        "build.json",
        "card",
        "eval.json",
        "model",
    ]


SLOW_CARD = """
import sys, time
from pathlib import Path
import importlib
card_render = importlib.import_module("zoo.card.render")
from zoo.catalog import load, recipe_paths
from zoo.recipe import load_recipe
real = card_render.plot
def slow(*args, **kwargs):
    out = real(*args, **kwargs)
    print("drawn", flush=True)
    time.sleep(60)
    return out
card_render.plot = slow
root, work = Path(sys.argv[1]), Path(sys.argv[2])
card_render.render(load("llama3-8b-rtn-3bit", root), [load_recipe(p) for p in recipe_paths(root)], work, force=True)
"""


def test_sigterm_mid_card_keeps_the_previous_card(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    render(recipe, CATALOG, tmp_path)
    before = card_files(tmp_path / recipe.name / "card")
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CARD, str(RECIPES), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "drawn"
        partial = list((tmp_path / recipe.name).glob(".card.partial-*"))
        assert partial and (partial[0] / "quality_vs_bits.png").exists()  # the new card was under way
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert card_files(tmp_path / recipe.name / "card") == before


def test_limited_run_publishes_no_hub_eval_results(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path, limit=2)
    readme = render(recipe, CATALOG, tmp_path).readme
    assert ModelCard.load(readme).data.eval_results is None
    assert not (readme.parent / ".eval_results").exists()
    assert "limited to 2 items per task" in readme.read_text()


def test_serving_memory_is_weights_plus_the_kv_cache_of_the_checkpoint_config(tmp_path: Path) -> None:
    from zoo.card.usage import method_class, serving_memory
    from zoo.records import BuildRecord
    from zoo.variant.read import read
    from zoo.workdir import Layout

    recipe = load("llama3-8b-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    model = Layout(tmp_path, recipe.name).model
    (model / "config.json").write_text(json.dumps(
        {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
    ))  # fmt: skip
    build = BuildRecord.require(Layout(tmp_path, recipe.name))
    mem = serving_memory(read(recipe, tmp_path))
    assert mem is not None and mem["kv_gb"] == pytest.approx(2 * 32 * 8 * 128 * 2 * 8192 / 1e9)  # LLaMA-3-8B: 1.07 GB
    assert mem["total_gb"] == pytest.approx(build.total_bytes / 1e9 + mem["kv_gb"]) and "packed" not in mem["total_text"]
    assert serving_memory(read(recipe, tmp_path / "elsewhere")) is None
    kinds = {n: method_class(load(n, RECIPES)) for n in ("llama3-8b-gptq-4bit", "llama3-8b-smoothquant-w8a8",
                                                         "llama3-8b-billm-1.1bit", "llama3-8b-qlora-4bit")}  # fmt: skip
    assert kinds == {"llama3-8b-gptq-4bit": "weight-only", "llama3-8b-smoothquant-w8a8": "w8a8",
                     "llama3-8b-billm-1.1bit": "research", "llama3-8b-qlora-4bit": "adapter"}  # fmt: skip
    text = render(recipe, CATALOG, tmp_path, force=True).readme.read_text()
    assert "plus 1.1 GB of bf16 KV cache for one 8192-token sequence" in text and "## Intended use and limitations" in text


def test_a_packed_release_gives_its_size_and_memory_as_packed_and_its_runtimes_as_the_16_bit_forms(tmp_path: Path) -> None:
    """#32: a native method publishing its packed checkpoint says so wherever its size or memory appears."""
    from tests.test_serving import write_bench

    recipe = load("tiny-llama3-billm-1.1bit", RECIPES)
    synthetic(recipe, tmp_path, evaluated=False)
    layout = Layout(tmp_path, recipe.name)
    (layout.packed).mkdir()
    (layout.packed / "model.safetensors").write_bytes(b"p" * 1234)
    data = json.loads(layout.build_json.read_text())
    entry = FileEntry(path="model.safetensors", size=1234, sha256=sha256_file(layout.packed / "model.safetensors"))
    BuildRecord.parse({**data, "packed_files": [entry.model_dump()], "total_bytes": 1234}).write(layout)  # type: ignore[union-attr]
    write_bench(tmp_path, recipe.name, vllm="serves")
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    mine = next(x for x in siblings_section(text).splitlines() if x.startswith("| **tiny-llama3-billm-1.1bit**"))
    assert "| 0.001234 (packed) |" in mine, mine
    assert "Memory to serve: 1 kB (packed) of weights" in text
    assert "Served in `zoo bench`'s check (its 16-bit form" in text and "zoo's packed format" in text
    assert "stored dequantized in 16-bit, so it has no memory" not in text


def test_metadata_the_hub_would_reject_fails_the_card_not_the_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from zoo.errors import CardError

    card_render = importlib.import_module("zoo.card.render")
    recipe = load("llama3-8b-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    monkeypatch.setattr(card_render, "eval_result_files", lambda ctx: {"mmlu.yaml": [{"dataset": {"id": "cais/mmlu"}}]})
    with pytest.raises(CardError, match="the card's Hub metadata does not parse back"):
        render(recipe, CATALOG, tmp_path)
    assert not (tmp_path / recipe.name / "card").exists()  # nothing half-written


def export_record(workdir: Path, recipe: Recipe, fmt: str, types: dict[str, str], build_sha256: str | None = None) -> None:
    """An export.json as ``zoo export`` writes it, beside the synthetic build (of it unless ``build_sha256``)."""
    from zoo.records import ExportRecord

    layout = Layout(workdir, recipe.name)
    folder = layout.export(fmt)
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / (f"{recipe.name}.gguf" if fmt == "gguf" else "model.safetensors")
    main.write_bytes(b"exported")
    ExportRecord(
        name=recipe.name, format=fmt, zoo_version="0.1.0", created="2026-01-02T05:00:00+00:00",
        build_sha256=build_sha256 or sha256_file(layout.build_json), source_files=(), types=types,
        exactness={"reader": "gguf 0.17.1 GGUFReader", "tensors": len(types), "equal": True},
        files=(FileEntry(path=main.name, size=main.stat().st_size, sha256=sha256_file(main)),), versions={},
    ).write_into(folder)  # fmt: skip


def test_a_card_names_the_exports_its_release_carries_and_only_those(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#31: an export of this build is named with its block types, the exactness claim and a runtime snippet; one of
    an earlier build (not published) is not, and without any the usage section says nothing of exports."""
    from zoo.card.usage import exports

    card_render = importlib.import_module("zoo.card.render")  # zoo.card.render is also the function's name
    real = card_render.gather

    def gather(recipe, catalog, workdir, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ctx = real(recipe, catalog, workdir, *args, **kwargs)
        ctx.setdefault("exports", exports(Layout(workdir, recipe.name)))  # once context.py gathers it, a no-op
        return ctx

    monkeypatch.setattr(card_render, "gather", gather)
    recipe = load("llama3-8b-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    plain = render(recipe, CATALOG, tmp_path, force=True).readme.read_text()
    assert "bit-for-bit" not in plain and "llama" + "-cli" not in plain and "mlx_lm" not in plain

    linears = {f"model.layers.{i}.mlp.up_proj": "Q5_0" for i in range(3)}
    export_record(tmp_path, recipe, "gguf", linears)
    export_record(tmp_path, recipe, "mlx", {"model.layers.0.mlp.up_proj": "affine 4-bit g128"}, build_sha256="0" * 64)
    text = render(recipe, CATALOG, tmp_path, force=True).readme.read_text()
    usage = text.split("## How to use", 1)[1]
    assert "as GGUF for llama.cpp" in usage and "in `gguf/`: its 3 quantized tensors in `Q5_0`;" in usage
    assert "exact: every weight decodes bit-for-bit to this build's" in usage
    assert f"llama-cli -m {recipe.name}/gguf/{recipe.name}.gguf" in usage
    assert f'Llama.from_pretrained("{recipe.repo_id}", filename="gguf/{recipe.name}.gguf")' in usage
    assert "mlx_lm" not in usage and "mlx/" not in usage  # the MLX export is of an earlier build: not carried

    export_record(tmp_path, recipe, "mlx", {"model.layers.0.mlp.up_proj": "affine 4-bit g128"})
    usage = render(recipe, CATALOG, tmp_path, force=True).readme.read_text().split("## How to use", 1)[1]
    assert f"mlx_lm.generate --model {recipe.name}/mlx" in usage and "in `mlx/`" in usage and "`affine 4-bit g128`" in usage
