"""zoo's own methods (the study's ultra-low-bit ones): the shared OBS loop and QuIP so far."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import RECIPES
from zoo.methods import obs
from zoo.methods.quip import quantize_weight, rotation


@pytest.fixture(scope="module")
def layer_data():
    """A real tiny-llama3 Linear (layer 1 down_proj) and the activations that reach it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.data.calibration import draw, token_ids
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    path = builtin_path("tiny-llama3")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ids = draw(token_ids(corpus.train_text(), AutoTokenizer.from_pretrained(path)), 16, 128, 0)
    linear = model.model.layers[1].mlp.down_proj
    seen = []
    handle = linear.register_forward_hook(lambda m, a, o: seen.append(a[0].reshape(-1, a[0].shape[-1])))
    with torch.no_grad():
        model(input_ids=torch.tensor(ids))
    handle.remove()
    x = torch.cat(seen)
    return linear.weight.data.clone(), x, 2 * x.t() @ x / x.shape[0]


def out_error(w: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> float:
    return float(((x @ (w - q).t()) ** 2).mean())


def test_rotations_are_orthogonal_and_seeded() -> None:
    u = rotation(768, 0)
    assert torch.allclose(u @ u.t(), torch.eye(768), atol=1e-4)
    assert torch.equal(u, rotation(768, 0)) and not torch.equal(u, rotation(768, 1))


def test_obs_loop_with_identity_hessian_is_plain_rounding() -> None:
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    grid = obs.uniform(w, 3, dim=1)
    lo, hi = w.amin(1).clamp(max=0), w.amax(1).clamp(min=0)
    scale, zero = (hi - lo) / 7, (-lo / ((hi - lo) / 7)).round()

    def block(w1, h1, first):
        return lambda i, col: ((col / scale).round() + zero).clamp(0, 7).sub(zero).mul(scale)

    assert torch.allclose(obs.quantize(w, torch.eye(64), block, dampening=0.0), grid, atol=1e-5)


def test_quip_2bit_beats_rtn_2bit_per_channel(layer_data) -> None:
    w, x, h = layer_data
    rtn = obs.uniform(w, 2, dim=1)
    quip = quantize_weight(w, h, 2)
    assert out_error(w, quip.weight, x) < out_error(w, rtn, x)
    assert quip.bits == w.numel() * 2 + w.shape[0] * 32


def test_quip_recipe_builds_reloads_and_generates(built) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = built("tiny-llama3-quip-2bit-pc")
    record = json.loads((folder / "quantization.json").read_text())
    in_features = {256, 768}
    assert 2 < record["bits_per_weight"] <= 2 + 32 / min(in_features) + 1e-6
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    x = tok("The while statement", return_tensors="pt")
    assert model.generate(**x, max_new_tokens=6, do_sample=False).shape[1] == x["input_ids"].shape[1] + 6
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert (RECIPES / "tiny-llama3-quip-2bit-pc.yaml").exists()
