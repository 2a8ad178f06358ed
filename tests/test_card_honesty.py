"""What a card says a model is, read as a model-card reader would (#34): a tiny test base is named as one,
quick runs are marked the same way wherever a number appears, steps and snippets work as printed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.test_card import CATALOG, summary, synthetic, table
from zoo.card import render
from zoo.catalog import load
from zoo.workdir import Layout


def test_a_tiny_base_card_says_it_is_a_test_model_not_a_benchmark(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-rtn-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    head = summary(render(recipe, CATALOG, tmp_path).readme.read_text())
    assert head.lstrip().startswith("tiny-llama3-rtn-4bit\n")
    first = head.split("\n\n")[1]
    assert first.startswith("**Not a benchmark result: `tiny-llama3` is zoo's built-in test model (4.2M parameters)"), first
    assert "offline task files" in first


def test_a_real_base_card_has_no_test_model_line(tmp_path: Path) -> None:
    recipe = load("llama3-8b-rtn-3bit", RECIPES)
    synthetic(recipe, tmp_path)
    assert "Not a benchmark result" not in render(recipe, CATALOG, tmp_path).readme.read_text()


def test_offline_task_recoveries_say_how_few_items_they_rest_on(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    rows = table(render(recipe, CATALOG, tmp_path).readme.read_text())
    task_rows = {k: v for k, v in rows.items() if "perplexity" not in k}
    assert task_rows and all(v[2].endswith("(on 10 items)") for v in task_rows.values()), task_rows
    assert not rows["pydoc topics (held-out) perplexity"][2].endswith("items)")


@pytest.mark.parametrize(("name", "calibrated"), [("tiny-llama3-rtn-4bit", False), ("tiny-llama3-gptq-4bit", True)])
def test_calibration_is_listed_only_for_methods_that_use_it(name: str, calibrated: bool, tmp_path: Path) -> None:
    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    details = render(recipe, CATALOG, tmp_path).readme.read_text().split("## Quantization details", 1)[1].split("\n## ")[0]
    assert ("`pydoc` (train split)" in details) == calibrated, details
    assert ("Calibration: none; RTN rounds each weight on its own" in details) == (not calibrated), details


@pytest.mark.parametrize(("name", "extras"), [("llama3-8b-gptq-4bit", "eval"), ("llava-next-8b-gptq-4bit", "eval,vision")])
def test_reproduce_steps_install_the_extra_the_commands_need(name: str, extras: str, tmp_path: Path) -> None:
    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    section = render(recipe, CATALOG, tmp_path).readme.read_text().split("## How to reproduce", 1)[1]
    assert f'pip install -e ".[{extras}]"\nzoo build {name}\n' in section, section[:600]


def test_vllm_snippet_serves_no_more_context_than_the_checkpoint_has(tmp_path: Path) -> None:
    recipe = load("tiny-llama3-rtn-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    model = Layout(tmp_path, recipe.name).model
    config = {"num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 256}
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
    from tests.test_serving import write_bench

    write_bench(tmp_path, recipe.name, vllm="serves")  # the snippet appears only where zoo bench saw vLLM serve (#31)
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    assert "--max-model-len 2048\n" in text and "8192" not in text.split("## How to use", 1)[1].split("## ")[0]


def test_a_siblings_quick_run_is_marked_in_the_table_the_plot_and_the_site(tmp_path: Path) -> None:
    from zoo.card.siblings import measured, plot_points, sibling_rows
    from zoo.publish.collections import note_for
    from zoo.site.rows import row
    from zoo.variant.read import read

    recipe = load("tiny-llama3-gptq-4bit", RECIPES)
    synthetic(recipe, tmp_path)
    sibling = load("tiny-llama3-rtn-4bit", RECIPES)
    synthetic(sibling, tmp_path, limit=3, metrics={"ppl/pydoc": 61.5, "zero_shot_avg/acc": 0.4}, base={"ppl/pydoc": 60.0})
    text = render(recipe, CATALOG, tmp_path).readme.read_text()
    line = next(x for x in text.splitlines() if x.startswith("| tiny-llama3-rtn-4bit |"))
    assert "61.5 (quick run)" in line and "0.4 (quick run)" in line, line
    mine = next(x for x in text.splitlines() if x.startswith("| **tiny-llama3-gptq-4bit**"))
    assert "quick run" not in mine  # this model's full run is not marked
    rows = sibling_rows(recipe, CATALOG, tmp_path, "ppl/pydoc", *measured(tmp_path, recipe.name))
    quick = {p.name: p.quick for p in plot_points(rows)}
    assert quick == {"tiny-llama3-rtn-4bit": True, "tiny-llama3-gptq-4bit": False}
    site = row(sibling, tmp_path)
    assert site["ppl_text"] == "61.5 (quick run)" and site["acc_text"] == "0.4 (quick run)"
    assert note_for(read(sibling, tmp_path)).count("(quick run)") == 2


def test_the_plot_draws_quick_runs_as_crosses_and_says_so(tmp_path: Path) -> None:
    from zoo.card.plot import plot
    from zoo.variant.points import Point

    points = [Point("a", "RTN (g128)", 4, 60.0, 0.97, True, True), Point("b", "RTN (g128)", 3, 70.0, 0.8, True, False)]
    drawn = plot(points, "pydoc", "b", "tiny-llama3", tmp_path / "p.png", baseline=None)
    assert drawn is not None and "1 measured by zoo (filled), 1 quick run (cross)" in drawn["title"]


def test_bitsandbytes_kernels_advice_is_dropped_unless_debugging(caplog: pytest.LogCaptureFixture) -> None:
    from zoo.progress import quiet_backend_advice

    quiet_backend_advice()
    quiet_backend_advice()  # once is enough: a second call adds no second filter
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(logger.filters) == 1
    advice = "Failed to load CPU gemm_4bit_forward from kernels-community: Please `pip install kernels`"
    with caplog.at_level(logging.WARNING):
        logger.warning(advice)
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    zoo_logger = logging.getLogger("zoo")
    old = zoo_logger.level
    zoo_logger.setLevel(logging.DEBUG)
    try:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            logger.warning(advice)
        assert [r.getMessage() for r in caplog.records] == [advice]
    finally:
        zoo_logger.setLevel(old)


@pytest.mark.parametrize(
    ("name", "who"),
    [("llama3-8b-gptq-4bit", "llm-compressor's implementation"), ("llama3-8b-billm-1.1bit", "the authors' algorithm (Aaronhuang-778/BiLLM")],
)
def test_the_implementation_row_names_who_implemented_it(name: str, who: str, tmp_path: Path) -> None:
    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    row = next(x for x in render(recipe, CATALOG, tmp_path).readme.read_text().splitlines() if x.startswith("| Implementation |"))
    assert who in row and "the reference implementation" not in row, row


def test_a_packed_release_card_loads_it_with_zoo_and_sends_vllm_to_the_unpacked_form(tmp_path: Path) -> None:
    from tests.test_serving import write_bench
    from zoo.records import BuildRecord, FileEntry
    from zoo.workdir import sha256_file

    recipe = load("tiny-llama3-billm-1.1bit", RECIPES)
    synthetic(recipe, tmp_path)
    layout = Layout(tmp_path, recipe.name)
    data = json.loads(layout.build_json.read_text())
    layout.packed.mkdir()
    (layout.packed / "model.safetensors").write_bytes(b"zoo")
    data["packed_files"] = [FileEntry(path="model.safetensors", size=3, sha256=sha256_file(layout.packed / "model.safetensors")).model_dump()]
    BuildRecord.model_validate(data).write(layout)
    synthetic_eval = json.loads(layout.eval_json.read_text())  # eval.json names the build it measured: re-point it
    synthetic_eval["build_sha256"] = sha256_file(layout.build_json)
    layout.eval_json.write_text(json.dumps(synthetic_eval))
    write_bench(tmp_path, recipe.name, "serves")
    usage = render(recipe, CATALOG, tmp_path).readme.read_text().split("## How to use", 1)[1].split("\n## ")[0]
    assert "import zoo.packed" in usage and f"zoo pull {recipe.name} --unpack" in usage, usage
    assert "api_server" not in usage and "does not load zoo's packed format" in usage
