"""The outlier proxy base: tiny-llama3 with LLaMA-3-like heavy-tailed weights, on which 2 bits collapse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.tiny.bases import BUILTIN_BASES, builtin_path
from zoo.tiny.outliers import FRACTION, measure, shares

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_the_proxy_is_a_builtin_with_the_tiny_bases_shape() -> None:
    assert "tiny-llama3-outliers" in BUILTIN_BASES
    proxy = json.loads((builtin_path("tiny-llama3-outliers") / "config.json").read_text())
    tiny = json.loads((builtin_path("tiny-llama3") / "config.json").read_text())
    assert {k: v for k, v in proxy.items() if k != "transformers_version"} == {
        k: v for k, v in tiny.items() if k != "transformers_version"
    }


def test_its_weights_are_heavy_tailed_where_the_tiny_bases_are_not() -> None:
    proxy, tiny = shares(builtin_path("tiny-llama3-outliers")), shares(builtin_path("tiny-llama3"))
    assert set(proxy) == set(tiny) and len(proxy) == 28
    for name, share in proxy.items():
        assert 0.5 * FRACTION < share < 1.5 * FRACTION, name
        assert tiny[name] < 0.1 * FRACTION, name


def test_measure_reports_the_share_per_kind_of_linear() -> None:
    kinds = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    proxy, tiny = measure(builtin_path("tiny-llama3-outliers")), measure(builtin_path("tiny-llama3"))
    assert set(proxy) == set(tiny) == kinds
    assert all(0.5 * FRACTION < v < 1.5 * FRACTION for v in proxy.values())
    assert all(v < 0.1 * FRACTION for v in tiny.values())


def _rtn_2bit_ratio(base: str, tmp_path: Path) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.catalog import load
    from zoo.data.calibration import token_ids
    from zoo.evaluation.perplexity import perplexity
    from zoo.quantize import build
    from zoo.tiny import corpus

    recipe = load("tiny-llama3-rtn-2bit", RECIPES)
    recipe = recipe.model_copy(update={"base": recipe.base.model_copy(update={"builtin": base})})
    folder = build(recipe, tmp_path / base, RECIPES, device="cpu").model_dir
    ids = token_ids(corpus.heldout_text(), AutoTokenizer.from_pretrained(builtin_path(base)))
    values = [
        perplexity(AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32), ids, 256).value
        for p in (builtin_path(base), folder)
    ]
    assert values[0] < 60  # the proxy still models its text as well as the tiny base (56.25)
    return values[1] / values[0]


@pytest.mark.parametrize(("base", "low", "high"), [("tiny-llama3", 1.0, 1.5), ("tiny-llama3-outliers", 10.0, None)])
def test_rtn_at_2_bits_collapses_on_the_proxy_alone(base: str, low: float, high: float | None, tmp_path: Path) -> None:
    """The study's LLaMA3-8B: RTN W2 g128 1.9e3 against 6.1 at 16 bits; the tiny base: 64 against 56."""
    ratio = _rtn_2bit_ratio(base, tmp_path)
    assert ratio > low and (high is None or ratio < high)


def test_make_refuses_a_folder_it_did_not_write_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    from zoo.errors import UsageError
    from zoo.tiny.outliers import make

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="did not write"):
        make(out, 0.005, 20.0, 1, 0)
    assert [f.name for f in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["mine"]  # no temporary folder left beside it


@pytest.mark.parametrize("args", [["--measure", "missing"], ["--out", "notes.txt"]])
def test_bad_folders_are_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "notes.txt").write_text("keep me")
    run = subprocess.run(
        [sys.executable, "-m", "zoo.tiny.outliers", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "fix:" in run.stderr, run.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"
