"""DB-LLM's compact packed form (#32): three levels and a correction per block row, bit-exact, within 3% of its bits."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from zoo.methods import dbllm
from zoo.packed import codec, size


def _result() -> Any:
    torch.manual_seed(1)
    w, x = torch.randn(128, 512) * 0.02, torch.randn(1024, 512)
    return dbllm.quantize_weight(w, 2 * x.T @ x / 1024)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dual_rule_restores_the_levels_exactly_in_50_bits_a_block_row(dtype: Any) -> None:
    r = _result()
    w16 = r.weight.to(dtype)
    spec, t = codec.encode(r.layout, w16)
    assert spec["banks"][0]["rule"] == "dual"
    assert torch.equal(codec.decode(spec, t).view(torch.int16), w16.view(torch.int16))
    assert spec["exceptions"] == 0  # the fourth level is always derived or fixed per block row, never per weight
    stored = sum(v.numel() * v.element_size() for v in t.values())
    assert stored * 8 <= 1.01 * r.bits  # the method counts 2 bits a weight + 48 a block row; this stores 50


def test_a_fourth_level_beyond_the_corrections_reach_is_kept_per_block_row() -> None:
    r = _result()
    w16 = r.weight.to(torch.bfloat16)
    row = w16[5, :128]
    top = row.max()
    row[row == top] = top * 1.5  # far from v1 + v2 - v0: no 2-bit correction reaches it
    spec, t = codec.encode(r.layout, w16)
    assert t["levels_fix_index"].numel() >= 1 and spec["exceptions"] == 0
    assert torch.equal(codec.decode(spec, t).view(torch.int16), w16.view(torch.int16))


def test_an_unknown_rule_is_refused_not_decoded_as_another() -> None:
    from zoo.errors import VerifyError

    r = _result()
    spec, t = codec.encode(r.layout, r.weight.to(torch.bfloat16))
    spec["banks"][0]["rule"] = "newer"
    with pytest.raises(VerifyError, match="rule 'newer'"):
        codec.decode(spec, t)


def test_full_size_releases_are_within_3_percent_of_the_measured_bits() -> None:
    estimates = {e.base: e for e in size.study_bases()}
    assert set(estimates) == {"meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-70B"}
    for e in estimates.values():
        assert 0 < e.over < 0.03, (e.base, e.over)
    # the four-level table of version 1 missed the target on 70B (most of it is decoder weights)
    assert estimates["meta-llama/Meta-Llama-3-70B"].table_over > 0.03
    assert estimates["meta-llama/Meta-Llama-3-70B"].decoder_params > 68e9
