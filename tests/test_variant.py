"""The read model (#29): a Variant from a tiny built workdir and from records alone, the Metric table's
directions, status transitions, and the size of what a release publishes (packed or 16-bit, #32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.test_card import synthetic
from zoo.catalog import load
from zoo.records import BuildRecord, FileEntry, PushRecord
from zoo.variant.metrics import ZERO_SHOT_AVG, metric, perplexity_key, recovery, valid_key
from zoo.variant.points import LOG_SPAN, log_axis
from zoo.variant.read import assemble, read
from zoo.workdir import Layout, sha256_file

TINY = "tiny-llama3-rtn-4bit"
NATIVE = "tiny-llama3-billm-1.1bit"


def test_a_variant_from_a_tiny_built_workdir(built, workdir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    built(TINY)
    shutil.copytree(workdir / TINY, tmp_path / TINY)  # its own copy: other tests evaluate the session's build
    for stale in ("eval.json", "bench.json", "push.json"):
        (tmp_path / TINY / stale).unlink(missing_ok=True)
    recipe = load(TINY, RECIPES)
    v = read(recipe, tmp_path)
    build = BuildRecord.require(Layout(tmp_path, TINY))
    assert v.status == "built" and v.built and not v.evaluated and not v.limited and not v.packed
    assert v.size_bytes == build.total_bytes == sum(f.size for f in build.files)
    assert v.stored_bits is not None and 4 < v.stored_bits < 16  # 4-bit codes, scales and 16-bit embeddings
    assert v.memory is not None and v.memory.kv_bytes and v.memory.total_bytes > v.size_bytes
    assert v.memory.context <= json.loads((tmp_path / TINY / "model" / "config.json").read_text())["max_position_embeddings"]
    assert v.series == "RTN (g128)" and v.bits_label == "W4 g128" and v.primary is not None
    assert v.primary.key == "ppl/pydoc" and v.measured_point() is None and v.served_by == ()
    assert read(recipe, tmp_path / "elsewhere").status == "not built"


def test_the_metric_table_says_which_way_is_better() -> None:
    ppl, acc, avg = metric(perplexity_key("wikitext2")), metric("arc_easy/acc_norm"), metric(ZERO_SHOT_AVG)
    assert (ppl.direction, ppl.lower_is_better, ppl.is_perplexity, ppl.label) == ("lower", True, True, "WikiText2 perplexity")
    assert (acc.direction, acc.group, acc.name, acc.label) == ("higher", "arc_easy", "acc_norm", "arc_easy (acc_norm)")
    assert avg.direction == "higher" and avg.label == "zero-shot average (acc)" and "mean" in avg.aggregation
    assert ppl.recovery(8.0, 6.0) == pytest.approx(75.0) and acc.recovery(0.3, 0.6) == pytest.approx(50.0)
    assert acc.recovery(0.3, 0.0) is None and ppl.recovery(0.0, 6.0) == 0.0 and ppl.recovery(None, 6.0) is None
    assert metric("mme/perception").label == "mme (perception)"
    with pytest.raises(ValueError, match="not group/name"):
        metric("wikitext2")
    assert valid_key("ppl/c4") and not valid_key("/c4") and not valid_key("ppl")
    from zoo.evaluation.run import recovery as written  # what eval.json holds: the table must agree with it

    metrics = {"ppl/pydoc": 20.0, "arc_easy/acc": 0.3, "mmlu/acc": 0.0, "ppl/c4": None}
    base = {"ppl/pydoc": 19.0, "arc_easy/acc": 0.0, "mmlu/acc": 0.5, "ppl/c4": 9.0}
    assert recovery(metrics, base) == written(metrics, base) == {"ppl/pydoc": pytest.approx(95.0), "mmlu/acc": 0.0}


def test_status_moves_from_not_built_to_published_and_back_on_a_rebuild(tmp_path: Path) -> None:
    recipe = load(TINY, RECIPES)
    layout = Layout(tmp_path, TINY)
    assert read(recipe, tmp_path).status == "not built"
    synthetic(recipe, tmp_path, evaluated=False)
    assert read(recipe, tmp_path).status == "built"
    synthetic(recipe, tmp_path, limit=4)
    v = read(recipe, tmp_path)
    assert v.status == "evaluated" and v.limited and v.value("ppl/pydoc") == 6.5 and v.recovery("ppl/pydoc") is not None
    assert v.measured_point() is not None and v.measured_point().quick  # type: ignore[union-attr]
    push = PushRecord(repo_id="zoo-tiny/x", revision="main", commit="a" * 40, tag=None, endpoint="https://hub.example",
                      build_sha256=sha256_file(layout.build_json), pushed="2026-12-06T00:00:00+00:00")  # fmt: skip
    push.write(layout)
    v = read(recipe, tmp_path)
    assert v.status == "published" and v.repo_url == "https://hub.example/zoo-tiny/x"
    data = json.loads(layout.build_json.read_text())
    layout.build_json.write_text(json.dumps({**data, "created": "2026-12-07T00:00:00+00:00"}))  # rebuilt
    v = read(recipe, tmp_path)
    assert v.status == "built" and v.evaluation is None and v.push is not None  # eval of the old build dropped
    assert read(recipe, tmp_path, push=False).push is None


def _build(name: str, weights: str | None, model: int, packed: int) -> BuildRecord:
    recipe = load(name, RECIPES).model_dump(mode="json")
    if weights is not None:
        recipe["hub"] = {**recipe.get("hub", {}), "weights": weights}
    files = (FileEntry(path="model.safetensors", size=model, sha256="a" * 64),)
    packed_files = (FileEntry(path="model.safetensors", size=packed, sha256="b" * 64),) if packed else ()
    publishes = packed and weights != "fake"
    return BuildRecord(
        name=name, zoo_version="0.1.0", created="2026-12-06T00:00:00+00:00", recipe_sha256="c" * 64, recipe=recipe,
        base={}, method={"name": "billm", "bits_per_weight": 1.14}, seed=0, calibration=None, device="cpu",
        host_memory_limit_bytes=None, versions={}, timings_s={}, peak_host_rss_bytes=0, gpu=None,
        total_bytes=packed if publishes else model, files=files, packed_files=packed_files,
    )  # fmt: skip


def test_the_size_is_the_packed_form_when_the_release_is_packed_and_the_16_bit_form_otherwise(tmp_path: Path) -> None:
    from zoo.cli.catalog import shown
    from zoo.site.rows import cells

    recipe = load(NATIVE, RECIPES)
    config = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 64}
    packed = assemble(recipe, _build(NATIVE, None, 8_000_000, 1_000_000), config=config)  # hub.weights: packed by default
    fake = assemble(recipe, _build(NATIVE, "fake", 8_000_000, 1_000_000), config=config)
    before = assemble(recipe, _build(NATIVE, None, 8_000_000, 0), config=config)  # a build before #32: no packed/
    assert (packed.packed, packed.size_bytes) == (True, 1_000_000)
    assert (fake.packed, fake.size_bytes) == (False, 8_000_000) and (before.packed, before.size_bytes) == (False, 8_000_000)
    assert packed.memory is not None and packed.memory.packed and packed.memory.weights_bytes == 1_000_000
    assert fake.memory is not None and not fake.memory.packed and fake.memory.weights_bytes == 8_000_000
    assert packed.stored_bits == pytest.approx(1_000_000 * 8 / (recipe.base.parameters * 1e9))
    assert packed.reported_bits == 1.14
    row = cells(packed)
    assert row["size_text"] == "1.0 MB (packed)" and row["memory_text"].endswith("(packed)") and row["packed"]
    assert cells(fake)["size_text"] == "8.0 MB"
    data, lines = shown(packed, tmp_path)
    assert data["packed"] and data["size_bytes"] == 1_000_000 and "size on disk: 1.0 MB (packed)" in lines[1]
    assert any(line.startswith("serving memory: ") and "(packed)" in line for line in lines)
    assert "runs with: not checked" in lines[-1]


def test_records_of_another_build_are_dropped_when_the_build_hash_is_given(tmp_path: Path) -> None:
    recipe = load(TINY, RECIPES)
    synthetic(recipe, tmp_path)
    layout = Layout(tmp_path, TINY)
    build = BuildRecord.require(layout)
    from zoo.records import EvalRecord

    ev = EvalRecord.require(layout)
    assert assemble(recipe, build, ev, build_sha256=sha256_file(layout.build_json)).evaluated
    assert not assemble(recipe, build, ev, build_sha256="0" * 64).evaluated
    assert assemble(recipe, build, ev).evaluated  # no hash: the caller checked them
    assert not assemble(recipe, None, ev).evaluated  # nothing measured counts without a build


def test_one_log_axis_rule_for_both_plots() -> None:
    from zoo.site.plot import svg
    from zoo.variant.points import Point

    assert not log_axis([2.0, 2.0 * LOG_SPAN]) and log_axis([2.0, 2.0 * LOG_SPAN + 0.01]) and not log_axis([])
    pts = [Point("a", "RTN (g128)", 4, 10.0, None, True, False), Point("b", "RTN (g128)", 2, 1000.0, None, False, False)]
    chart = svg(pts, "t")
    assert chart is not None and ">100<" in chart  # the geometric middle tick: a log axis, as the card's plot would draw
