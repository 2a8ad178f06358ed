"""Every catalog recipe that is a cell of Huang et al. 2024 (arXiv 2404.14047) carries all of that cell's
published figures, exactly, and no recipe carries study numbers for a cell the paper does not have.

The table below is copied by hand from the paper's result tables (the authors' repository
Macaronlin/LLaMA3-Quantization, images/result_ptq_1.png: LLaMA3-8B post-training; images/result_ptq_2.png:
LLaMA3-70B post-training; images/result_lora_ft_1.png: LoRA fine-tuning on 8B), written as published
(``1.1e2`` stays ``1.1e2``). Perplexities are WikiText2 / C4 / PTB; ``zero_shot_avg`` is the average of
PIQA, ARC-e, ARC-c, HellaSwag and Winogrande; ``mmlu_avg`` is the MMLU average. The per-task scores and
MMLU categories have no field in ``StudySpec`` and are not carried. The FP16 and NormalFloat rows have no
catalog recipe, nor LLaVA-Next (no per-cell numbers here). SliM-LLM is not in the study's tables: its cells
carry the WikiText2 perplexity of SliM-LLM's own paper (Huang et al. 2024, arXiv 2405.14917, Table 1, the
GPTQ-based SliM-LLM: LLaMA-3-8B 39.66, LLaMA-3-70B 9.46 at W2 g128; the authors' repository
Aaronhuang-778/SliM-LLM, imgs/WX20240527-173215@2x.png; its C4 table is in an appendix not published there),
with ``study.source`` naming that paper so no card calls them the study's.
"""

from __future__ import annotations

import pytest

from tests.conftest import RECIPES
from zoo.catalog import load, recipe_paths


def _ppl(wt2: float, c4: float, ptb: float, avg: float) -> dict[str, float]:
    return {"wikitext2": wt2, "c4": c4, "ptb": ptb, "zero_shot_avg": avg}


PUBLISHED: dict[str, dict[str, float]] = {
    # --- LLaMA3-8B (result_ptq_1.png) ---
    "llama3-8b-rtn-4bit": _ppl(8.5, 13.4, 14.5, 63.9),
    "llama3-8b-rtn-3bit": _ppl(27.9, 1.1e2, 95.6, 40.2),
    "llama3-8b-rtn-2bit": _ppl(1.9e3, 2.5e4, 1.8e4, 36.0),
    "llama3-8b-rtn-8bit-pc": _ppl(6.2, 9.5, 11.2, 68.9),
    "llama3-8b-rtn-4bit-pc": _ppl(8.7, 14.0, 14.9, 61.5),
    "llama3-8b-rtn-3bit-pc": _ppl(2.2e3, 5.6e2, 2.0e3, 35.6),
    "llama3-8b-rtn-2bit-pc": _ppl(2.7e6, 7.4e6, 3.1e6, 35.3),
    "llama3-8b-gptq-4bit": _ppl(6.5, 10.4, 11.0, 67.3),
    "llama3-8b-gptq-3bit": _ppl(8.2, 13.7, 15.2, 61.7),
    "llama3-8b-gptq-2bit": _ppl(2.1e2, 4.1e4, 9.1e2, 36.2),
    "llama3-8b-gptq-8bit-pc": _ppl(6.1, 9.4, 10.6, 68.6),
    "llama3-8b-gptq-4bit-pc": _ppl(7.0, 11.8, 14.4, 64.8),
    "llama3-8b-gptq-3bit-pc": _ppl(13.0, 45.9, 37.0, 44.9),
    "llama3-8b-gptq-2bit-pc": _ppl(5.7e4, 1.0e5, 2.7e5, 34.9),
    "llama3-8b-awq-4bit": _ppl(6.6, 9.4, 11.1, 68.2),
    "llama3-8b-awq-3bit": _ppl(8.2, 11.6, 13.2, 64.4),
    "llama3-8b-awq-2bit": _ppl(1.7e6, 2.1e6, 1.8e6, 34.9),
    "llama3-8b-awq-8bit-pc": _ppl(6.1, 8.9, 10.6, 68.7),
    "llama3-8b-awq-4bit-pc": _ppl(7.1, 10.1, 11.8, 67.0),
    "llama3-8b-awq-3bit-pc": _ppl(12.8, 16.8, 24.0, 57.8),
    "llama3-8b-awq-2bit-pc": _ppl(8.2e5, 8.1e5, 9.0e5, 35.5),
    "llama3-8b-quip-4bit-pc": _ppl(6.5, 11.1, 9.5, 67.1),
    "llama3-8b-quip-3bit-pc": _ppl(7.5, 11.3, 12.6, 63.7),
    "llama3-8b-quip-2bit-pc": _ppl(85.1, 1.3e2, 1.8e2, 36.8),
    "llama3-8b-dbllm-2bit": _ppl(13.6, 19.2, 23.8, 51.8),
    "llama3-8b-pbllm-2bit": _ppl(24.7, 79.2, 65.6, 38.8),
    "llama3-8b-pbllm-1.7bit": _ppl(41.8, 2.6e2, 1.2e2, 36.0),
    "llama3-8b-billm-1.1bit": _ppl(28.3, 2.9e2, 94.7, 37.9),
    "llama3-8b-smoothquant-w8a8": _ppl(6.3, 9.2, 10.8, 68.3),
    "llama3-8b-smoothquant-w6a6": _ppl(7.7, 11.8, 12.5, 64.6),
    "llama3-8b-smoothquant-w4a4": _ppl(4.3e3, 4.0e3, 3.6e3, 35.5),
    # --- LLaMA3-8B LoRA-FT (result_lora_ft_1.png) ---
    "llama3-8b-qlora-4bit": {"mmlu_avg": 56.7, "zero_shot_avg": 64.5},
    "llama3-8b-irqlora-4bit": {"mmlu_avg": 57.2, "zero_shot_avg": 64.9},
    # --- LLaMA3-70B (result_ptq_2.png) ---
    "llama3-70b-rtn-4bit": _ppl(3.6, 8.9, 9.1, 74.3),
    "llama3-70b-rtn-3bit": _ppl(11.8, 22.0, 26.3, 48.0),
    "llama3-70b-rtn-2bit": _ppl(4.6e5, 4.7e5, 3.8e5, 35.6),
    "llama3-70b-gptq-4bit": _ppl(3.3, 6.9, 8.3, 74.9),
    "llama3-70b-gptq-3bit": _ppl(5.2, 10.5, 9.7, 70.6),
    "llama3-70b-gptq-2bit": _ppl(11.9, 22.8, 31.6, 45.4),
    "llama3-70b-awq-4bit": _ppl(3.3, 7.0, 8.3, 74.9),
    "llama3-70b-awq-3bit": _ppl(4.8, 8.0, 9.0, 73.2),
    "llama3-70b-awq-2bit": _ppl(1.7e6, 1.4e6, 1.5e6, 35.7),
    "llama3-70b-quip-4bit-pc": _ppl(3.4, 7.1, 8.4, 74.5),
    "llama3-70b-quip-3bit-pc": _ppl(4.7, 8.0, 8.9, 72.5),
    "llama3-70b-quip-2bit-pc": _ppl(13.0, 22.2, 24.9, 48.7),
    "llama3-70b-pbllm-2bit": _ppl(11.6, 34.5, 27.2, 46.0),
    "llama3-70b-pbllm-1.7bit": _ppl(18.6, 65.2, 55.9, 44.1),
    "llama3-70b-billm-1.1bit": _ppl(17.1, 77.7, 54.2, 44.2),
    "llama3-70b-smoothquant-w8a8": _ppl(2.9, 6.9, 8.2, 75.3),
    "llama3-70b-smoothquant-w6a6": _ppl(2.9, 6.9, 8.2, 75.2),
    "llama3-70b-smoothquant-w4a4": _ppl(9.6, 16.9, 17.7, 61.6),
}


# Cells the study lacks, from the method's own paper (``study.source`` cites it)
OWN_PAPER: dict[str, dict[str, float]] = {
    "llama3-8b-slimllm-2bit": {"wikitext2": 39.66},
    "llama3-70b-slimllm-2bit": {"wikitext2": 9.46},
}


def _carried(name: str) -> dict[str, float]:
    return load(name, RECIPES).study.figures()


@pytest.mark.parametrize("name", sorted(PUBLISHED | OWN_PAPER))
def test_cell_carries_every_published_figure(name: str) -> None:
    carried = _carried(name)
    published = {**PUBLISHED, **OWN_PAPER}[name]
    source = load(name, RECIPES).study.source
    assert (source is None) == (name in PUBLISHED), f"{name}: study.source {source!r}"
    assert name in PUBLISHED or "2405.14917" in str(source)
    assert sorted(carried) == sorted(published), f"{name}: study carries {sorted(carried)}, paper has {sorted(published)}"
    for key, value in published.items():
        assert carried[key] == pytest.approx(value, rel=1e-9, abs=0), f"{name}.study.{key}: {carried[key]} != {value}"


def test_no_study_numbers_outside_the_table() -> None:
    stray = [p.stem for p in recipe_paths(RECIPES) if _carried(p.stem) and p.stem not in PUBLISHED | OWN_PAPER]
    assert not stray, f"recipes carry study numbers the table does not have: {stray}"


def test_table_names_are_catalog_recipes() -> None:
    names = {p.stem for p in recipe_paths(RECIPES)}
    assert set(PUBLISHED) | set(OWN_PAPER) <= names, sorted(set(PUBLISHED) | set(OWN_PAPER) - names)



def test_a_card_cites_the_paper_a_number_comes_from(tmp_path) -> None:  # noqa: ANN001
    from zoo.card.context import STUDY, gather
    from zoo.recipe import load_recipe

    catalog = [load_recipe(p) for p in recipe_paths(RECIPES)]
    slim = gather(load("llama3-8b-slimllm-2bit", RECIPES), catalog, tmp_path, "0", None, None)
    assert slim["study"] == {"wikitext2": 39.66} and "arXiv 2405.14917" in slim["study_citation"]
    assert gather(load("llama3-8b-gptq-4bit", RECIPES), catalog, tmp_path, "0", None, None)["study_citation"] == STUDY
