"""Evaluation across devices (issue #30): a host-memory cap offloads weights to disk without changing a number.

The tiny base is 17 MB in the fp32 a CPU eval loads; a 4 MB cap puts its layers on disk (accelerate's
disk offload, in the recipe's folder), and the perplexity must match the unconstrained eval's. A
checkpoint packed by compressed-tensors cannot come back from disk offload (compressed-tensors 0.19), so
a capped eval of one is refused up front. Spreading over several GPUs and vLLM tensor parallelism need GPUs: the ``gpu`` tests below.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import write
from zoo.catalog import load
from zoo.workdir import Layout

RECIPE = """name: tiny-offload-rtn
extends: _base/tiny-llama3
method: rtn
weights: {bits: 4, group_size: 128}
eval: {perplexity: [pydoc], seqlen: 256, tasks: []}
"""
CAP = 4 * 10**6


def test_a_capped_eval_offloads_to_disk_and_measures_the_same(
    catalog: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The 16-bit base under a 4 MB cap (a quarter of its fp32 weights): on disk, same perplexity, folder gone."""
    from zoo.evaluation.run import measure_baselines
    from zoo.plan.shape import shape

    write(catalog, "tiny-offload-rtn", RECIPE)
    recipe = load("tiny-offload-rtn", catalog)
    assert shape(recipe, catalog).params * 4 >= 4 * CAP  # the base is at least 4x the cap
    free = measure_baselines([recipe], tmp_path / "free", catalog, "cpu", limit=8)[recipe.name]
    with caplog.at_level(logging.INFO, logger="zoo.evaluation.run"):
        capped = measure_baselines([recipe], tmp_path / "capped", catalog, "cpu", limit=8, host_memory=CAP)[recipe.name]
    placed = [r.getMessage() for r in caplog.records if "placed over" in r.getMessage()]
    assert len(placed) == 1 and "disk" in placed[0], placed
    assert not Layout(tmp_path / "capped", recipe.name).offload.exists()  # the offloaded weights are removed after
    got, want = (json.loads(p.read_text())["metrics"]["ppl/pydoc"] for p in (capped, free))
    assert got == pytest.approx(want, rel=1e-4)


def test_a_packed_checkpoint_is_refused_before_measuring(catalog: Path, tmp_path: Path) -> None:
    """compressed-tensors cannot read packed weights back from disk offload: one line, exit 2, nothing measured."""
    from zoo.errors import UsageError
    from zoo.evaluation.run import evaluate
    from zoo.quantize import build

    write(catalog, "tiny-offload-rtn", RECIPE)
    recipe = load("tiny-offload-rtn", catalog)
    work = tmp_path / "work"
    build(recipe, work, catalog, device="cpu")
    with pytest.raises(UsageError, match="cannot be offloaded to disk"):
        evaluate(recipe, work, catalog, device="cpu", limit=8, host_memory=CAP)
    assert not Layout(work, recipe.name).eval_json.exists() and not Layout(work, recipe.name).baselines.exists()


def test_the_input_goes_where_the_first_module_is() -> None:
    from types import SimpleNamespace

    from zoo.evaluation.run import input_device

    assert input_device(SimpleNamespace(), "cpu") == "cpu"
    assert input_device(SimpleNamespace(hf_device_map={"model.embed_tokens": 0, "lm_head": 1}), "cuda") == "cuda:0"
    assert input_device(SimpleNamespace(hf_device_map={"model.embed_tokens": "disk"}), "cpu") == "cpu"


@pytest.mark.gpu
def test_eval_spreads_over_every_visible_gpu(catalog: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """On a machine with two or more GPUs, the model is placed over all of them and measures as on one."""
    import torch

    from zoo.evaluation.run import evaluate
    from zoo.quantize import build

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    write(catalog, "tiny-offload-rtn", RECIPE)
    recipe = load("tiny-offload-rtn", catalog)
    build(recipe, tmp_path / "work", catalog, device="cuda")
    with caplog.at_level(logging.INFO, logger="zoo.evaluation.run"):
        evaluate(recipe, tmp_path / "work", catalog, device="cuda", limit=8)
    assert any("placed over" in r.getMessage() for r in caplog.records)
