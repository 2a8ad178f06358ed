"""zoo's own methods (the study's ultra-low-bit ones) on one Linear: the shared OBS loop, QuIP, each method against RTN
(the builds of their tiny recipes: test_native_builds.py)."""

from __future__ import annotations

import pytest
import torch

from zoo.methods import obs
from zoo.methods.quip import quantize_weight
from zoo.methods.rotations import butterfly, butterfly_factors, rotation


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


@pytest.mark.parametrize(("n", "factors"), [(256, (16, 16)), (384, (16, 24)), (14336, (64, 224)), (28672, (448, 64))])
def test_butterflies_split_as_the_authors_do_and_are_orthogonal(n: int, factors: tuple[int, int]) -> None:
    assert butterfly_factors(n) == factors
    if n <= 384:
        u = butterfly(n, torch.Generator().manual_seed(0))
        assert torch.allclose(u @ u.t(), torch.eye(n), atol=1e-4)
        assert not torch.equal(u, butterfly(n, torch.Generator().manual_seed(1)))


def test_obs_loop_with_identity_hessian_is_plain_rounding() -> None:
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    grid = obs.uniform(w, 3, dim=1)
    lo, hi = w.amin(1).clamp(max=0), w.amax(1).clamp(min=0)
    scale, zero = (hi - lo) / 7, (-lo / ((hi - lo) / 7)).round()

    def block(w1, h1, first):
        return lambda i, col: ((col / scale).round() + zero).clamp(0, 7).sub(zero).mul(scale)

    assert torch.allclose(obs.quantize(w, torch.eye(64), block, dampening=0.0), grid, atol=1e-5)


@pytest.mark.parametrize("variant", ["authors", "zoo-obs"])
def test_quip_2bit_beats_rtn_2bit_per_channel(layer_data, variant: str) -> None:
    w, x, h = layer_data
    rtn = obs.uniform(w, 2, dim=1)
    quip = quantize_weight(w, h, 2, variant=variant)
    assert out_error(w, quip.weight, x) < out_error(w, rtn, x)
    meta = 16 + 16 * w.shape[1] if variant == "authors" else w.shape[0] * 32  # one scale + column rescaling; row grids
    assert quip.bits == w.numel() * 2 + meta


def rtn_grouped(w: torch.Tensor, bits: int) -> torch.Tensor:
    return obs.uniform(w.view(w.shape[0], -1, 128), bits, dim=2).view_as(w)


@pytest.mark.parametrize(
    "method,rtn_bits",
    [("billm", 1), ("pbllm", 2), ("dbllm", 2), ("slimllm", 2)],
)
def test_each_method_beats_rtn_at_its_bits(method: str, rtn_bits: int, layer_data) -> None:
    from zoo.methods import billm, dbllm, pbllm, slimllm

    w, x, h = layer_data
    result = {
        "billm": lambda: billm.quantize_weight(w, h, 0.1),
        "pbllm": lambda: pbllm.quantize_weight(w, h, 0.143),
        "dbllm": lambda: dbllm.quantize_weight(w, h),
        "slimllm": lambda: slimllm.quantize_weight(w, h, 2),
    }[method]()
    assert out_error(w, result.weight, x) < out_error(w, rtn_grouped(w, rtn_bits), x)
    assert result.bits > result.code_bits  # scales, masks and bitmaps are counted


def _distinct_per_row_block(q: torch.Tensor) -> list[int]:
    blocks = q.view(q.shape[0], -1, 128)
    return [len(torch.unique(blocks[r, b])) for r in range(blocks.shape[0]) for b in range(blocks.shape[1])]


def test_binarized_groups_hold_only_their_values(layer_data) -> None:
    from zoo.methods import billm, dbllm, pbllm, slimllm

    w, _, h = layer_data
    pb = pbllm.quantize_weight(w, h, 0.0).weight  # no salient weights: pure +/- alpha per row and block
    assert set(_distinct_per_row_block(pb)) <= {1, 2}
    bi = billm.quantize_weight(w, h, 0.0, variant="zoo-obs").weight  # two binarized groups: +/- alpha_c, +/- alpha_s
    assert max(_distinct_per_row_block(bi)) <= 4
    assert max(len(torch.unique(b.abs())) for b in bi.view(bi.shape[0], -1, 128).flatten(0, 1)) <= 2
    ba = billm.quantize_weight(w, h).weight  # authors': salient columns twice binarized (4 values), two groups of 2
    assert max(_distinct_per_row_block(ba)) <= 8
    assert max(_distinct_per_row_block(dbllm.quantize_weight(w, h).weight)) <= 4  # two binary matrices
    alloc = slimllm.allocate(w, h, 2, 128)
    assert sum(alloc) == 2 * len(alloc) and set(alloc) <= {1, 2, 3}
    sq = slimllm.quantize_weight(w, h, 2).weight.view(w.shape[0], -1, 128)
    for g, b in enumerate(alloc):
        assert max(len(torch.unique(sq[r, g])) for r in range(sq.shape[0])) <= 2**b
