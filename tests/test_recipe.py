"""The recipe schema, inheritance and the checks that report every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write
from zoo.catalog import validate
from zoo.errors import RecipeError
from zoo.recipe import load_recipe
from zoo.recipe.load import merge

GOOD = """name: NAME
extends: _base/tiny-llama3
method: gptq
weights: {bits: 4, group_size: 128}
"""


def test_merge_is_deep_for_mappings_and_replaces_lists() -> None:
    parent = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    child = {"a": {"y": [3]}, "c": 2}
    assert merge(parent, child) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert parent == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_inherits_through_two_levels_and_fills_method_defaults(catalog: Path) -> None:
    r = load_recipe(write(catalog, "tiny-a", GOOD.replace("NAME", "tiny-a")))
    assert r.family == "llama3"  # from _base/llama3 via _base/tiny-llama3
    assert r.base.builtin == "tiny-llama3"
    assert r.calibration.dataset == "pydoc" and r.calibration.seqlen == 256  # child of llama3 overrides
    assert r.eval.perplexity == ["pydoc"]
    assert r.params.model_dump() == {"dampening_frac": 0.01, "block_size": 128, "actorder": None}
    assert r.weights.symmetric is False  # GPTQ's own default
    assert r.format == "compressed-tensors"
    assert r.card.template == "llama3"
    assert r.repo_id == "zoo-tiny/tiny-a"


def test_extends_list_merges_in_order(catalog: Path) -> None:
    (catalog / "_base" / "strong.yaml").write_text("params: {dampening_frac: 0.1}\n")
    text = GOOD.replace("NAME", "tiny-b").replace("extends: _base/tiny-llama3", "extends: [_base/tiny-llama3, _base/strong]")
    assert load_recipe(write(catalog, "tiny-b", text)).params.model_dump()["dampening_frac"] == 0.1


def test_child_overrides_parent(catalog: Path) -> None:
    text = GOOD.replace("NAME", "tiny-c") + "calibration: {samples: 8}\nweights: {bits: 3, group_size: channel}\n"
    r = load_recipe(write(catalog, "tiny-c", text))
    assert r.calibration.samples == 8 and r.calibration.dataset == "pydoc"
    assert r.weights.bits == 3 and r.weights.group_size == "channel"


BAD = {
    "unknown-key": (
        GOOD + "weights: {bits: 4, grup_size: 128}\n",
        "weights.grup_size: unknown key (fix: did you mean 'group_size'?)",
    ),
    "wrong-type": (GOOD + "calibration: {samples: many}\n", "calibration.samples: Input should be a valid integer"),
    "name-mismatch": (
        GOOD.replace("name: NAME", "name: something-else"),
        "name: 'something-else' does not match the file name",
    ),
    "near-miss-method": (
        GOOD.replace("method: gptq", "method: gtpq"),
        "method: unknown method 'gtpq' (fix: did you mean 'gptq'?)",
    ),
    "bits-unsupported": (
        GOOD.replace("bits: 4", "bits: 5"),
        "weights.bits: GPTQ does not support 5-bit weights (fix: use one of 2, 3, 4, 8)",
    ),
    "group-not-dividing": (
        GOOD.replace("group_size: 128", "group_size: 512"),
        "weights.group_size: 512 does not divide the model's hidden_size (256)",
    ),
    "broken-yaml": ("name: broken-yaml\nweights: {bits: 4\n", "invalid YAML at line"),
    "missing-extends": (GOOD.replace("_base/tiny-llama3", "_base/tiny-lama3"), "extends: '_base/tiny-lama3' not found"),
    "cycle": ("name: cycle\nextends: cycle-b\n", "inheritance cycle: cycle.yaml -> cycle-b.yaml -> cycle.yaml"),
    "unknown-param": (
        GOOD + "params: {dampening: 0.1}\n",
        "params.dampening: unknown key (fix: did you mean 'dampening_frac'?)",
    ),
    "activations-missing": (
        GOOD.replace("method: gptq", "method: smoothquant").replace("128}", "channel}"),
        "activations: SmoothQuant quantizes activations too",
    ),
    "no-revision": (
        GOOD + "base: {builtin: null, repo_id: meta-llama/Meta-Llama-3-8B}\n",
        "a Hub base needs a pinned `revision`",
    ),
    "images-on-text-model": (
        GOOD + "calibration: {images: builtin}\n",
        "calibration.images: image calibration needs a multimodal family",
    ),
    "unknown-task": (
        GOOD + "eval: {tasks: [hellaswg]}\n",
        "eval.tasks.0: unknown task 'hellaswg' (fix: did you mean 'hellaswag'?)",
    ),
}


def test_every_malformed_recipe_is_reported_in_one_run(catalog: Path) -> None:
    paths = [write(catalog, name, text.replace("NAME", name)) for name, (text, _) in BAD.items()]
    (catalog / "cycle-b.yaml").write_text("extends: cycle\n")
    problems = validate(paths)
    by_file: dict[str, list[str]] = {}
    for p in problems:
        by_file.setdefault(Path(p.file).stem, []).append(str(p))
    for name, (_, expected) in BAD.items():
        assert any(expected in line for line in by_file.get(name, [])), (name, by_file.get(name))


def test_missing_extends_still_reports_the_files_own_problems(catalog: Path) -> None:
    text = "name: x\nextends: _base/nope\nmethod: gptqq\n"
    with pytest.raises(RecipeError) as err:
        load_recipe(write(catalog, "y", text))
    lines = [str(p) for p in err.value.problems]
    assert any("'_base/nope' not found" in s for s in lines)
    assert any("does not match the file name 'y'" in s for s in lines)
    assert any("did you mean 'gptq'" in s for s in lines)


def test_base_parent_with_unknown_key_is_reported(catalog: Path) -> None:
    (catalog / "_base" / "oops.yaml").write_text("calibraton: {samples: 1}\n")
    [problem] = validate([catalog / "_base" / "oops.yaml"])
    assert "did you mean 'calibration'" in str(problem)


def test_per_channel_only_method_rejects_groups(catalog: Path) -> None:
    text = GOOD.replace("method: gptq", "method: quip").replace("NAME", "q")
    with pytest.raises(RecipeError, match="QuIP quantizes per channel only"):
        load_recipe(write(catalog, "q", text))
