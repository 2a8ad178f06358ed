"""The shipped catalog: every recipe valid, names unique and regular, the study's cells all present."""

from __future__ import annotations

import pytest

from tests.conftest import RECIPES
from zoo.catalog import base_paths, recipe_paths, validate
from zoo.methods import METHODS
from zoo.recipe import Recipe, load_recipe

ALL = {p.stem: load_recipe(p) for p in recipe_paths(RECIPES)}


def expected_name(r: Recipe) -> str:
    """The naming scheme: <base>-<method>-<bits>bit[-pc|-g<N> unless 128]; SmoothQuant as -wXaY."""
    base = r.name.split(f"-{r.method}-")[0]
    if r.activations:
        return f"{base}-{r.method}-w{r.weights.bits:g}a{r.activations.bits}"
    g = r.weights.group_size
    suffix = "-pc" if g == "channel" else "" if g == 128 or r.format == "adapter" else f"-g{g}"
    return f"{base}-{r.method}-{r.weights.bits:g}bit{suffix}"


def test_every_file_is_valid() -> None:
    assert validate([*base_paths(RECIPES), *recipe_paths(RECIPES)]) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_name_is_regular(name: str) -> None:
    r = ALL[name]
    assert r.name == name == expected_name(r)
    base = name.split(f"-{r.method}-")[0]
    assert base in {"llama3-8b", "llama3-70b", "llava-next-8b", "tiny-llama3", "tiny-llava-next"}


def test_repo_ids_are_unique() -> None:
    ids = [r.repo_id for r in ALL.values()]
    assert len(ids) == len(set(ids))


def _study_cells() -> set[str]:
    cells = set()
    for base in ("llama3-8b", "llama3-70b"):
        for m in ("rtn", "gptq", "awq"):
            cells.add(f"{base}-{m}-8bit-pc")
            cells |= {f"{base}-{m}-{b}bit{s}" for b in (4, 3, 2) for s in ("", "-pc")}
        cells |= {f"{base}-quip-{b}bit-pc" for b in (4, 3, 2)}
        cells |= {f"{base}-pbllm-2bit", f"{base}-pbllm-1.7bit", f"{base}-billm-1.1bit", f"{base}-slimllm-2bit"}
        cells |= {f"{base}-smoothquant-w{b}a{b}" for b in (8, 6, 4)}
    cells |= {"llama3-8b-dbllm-2bit", "llama3-8b-qlora-4bit", "llama3-8b-irqlora-4bit"}
    cells |= {f"llava-next-8b-{m}-{b}bit" for m in ("rtn", "gptq", "awq") for b in (4, 3, 2)}
    return cells


def test_catalog_has_every_cell_of_the_study() -> None:
    missing = _study_cells() - set(ALL)
    assert not missing
    assert len(_study_cells()) == 74


def test_study_cells_use_the_real_bases_and_protocol() -> None:
    for name in _study_cells():
        r = ALL[name]
        assert r.base.repo_id and r.base.revision, name
        if r.family == "llava-next":
            assert r.base.repo_id == "llava-hf/llama3-llava-next-8b-hf"
        if r.method not in ("qlora", "irqlora"):
            c = r.calibration
            assert (c.dataset, c.samples, c.seqlen) == ("wikitext2", 128, 2048), name


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_has_a_tiny_recipe(method: str) -> None:
    assert METHODS.get(method).name == method
    assert any(r.method == method and r.base.builtin for r in ALL.values())


def test_published_numbers_are_carried() -> None:
    assert ALL["llama3-8b-gptq-4bit"].study.wikitext2 == 6.5
    assert ALL["llama3-70b-awq-3bit"].study.zero_shot_avg == 73.2
    assert ALL["llama3-8b-irqlora-4bit"].study.mmlu_avg == 57.2
