"""SliM-LLM's authors' variant against their code from the calibration windows (their Hessian normalization and
damping, their KL search, their GPTQ loop: ``tests/fixtures/parity_slimllm_windows.safetensors``, whose script
says how their unmodified code wrote it), then piece by piece: the k candidates, the second-order score, SQC,
1-bit groups and the mid-range zero point their quantizer's flag gives a leading low group."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zoo.methods import native, obs, slimllm, slimllm_obs

WINDOWS = Path(__file__).with_name("fixtures") / "parity_slimllm_windows.safetensors"


def _through_native(w: torch.Tensor, x: torch.Tensor, bits: int, **params: str) -> tuple[list[int], torch.Tensor]:
    """One Linear as a build quantizes it: H from native's hook on every window, the step's observers fed by
    native's replay of the windows, then its result. Returns the allocation and the quantized weight."""
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data = w.clone()
    hessian = native.Hessian(w.shape[1], "cpu")
    handle = lin.register_forward_hook(hessian.hook)
    with torch.no_grad():
        for xi in x:
            lin(xi.unsqueeze(0))
    handle.remove()
    observe, finish = slimllm.step(bits, 128, slimllm.SliMLLMParams(**params))(lin, hessian)
    if observe is not None:
        native.replay(lin, {"l": lin}, {"l": observe}, [xi.unsqueeze(0) for xi in x], {})
    plan = observe.__self__ if observe is not None else None  # the bound Plan: its allocation
    q = finish().weight
    return (plan.allocation() if plan is not None else []), q


def _same(q: torch.Tensor, theirs: torch.Tensor) -> bool:
    """Equal to float precision but for a rounding tie or two that summation order can flip."""
    return float(((q - theirs).abs() > 1e-6).float().mean()) < 1e-3


@pytest.mark.parametrize("bits", [2, 3])
def test_from_the_windows_zoo_is_their_code_where_their_search_runs(bits: int) -> None:
    """6 groups: their k in 1..2 by KL on the windows, on H normalized per sequence plus their absolute 0.01. With
    zoo's per-token H (64 x smaller here) the 0.01 damps far more and 40% of the weights differ; with the
    second-order score W2 picks k = 2, theirs k = 1."""
    from safetensors.torch import load_file

    t = load_file(str(WINDOWS))
    alloc, q = _through_native(t["wide.w"], t["wide.x"], bits)
    assert alloc == t[f"wide.alloc{bits}"].tolist()
    assert _same(q, t[f"wide.q{bits}"])


@pytest.mark.parametrize("bits", [2, 3])
def test_on_two_groups_zoo_scores_k_0_and_1_by_their_kl_and_then_is_their_code(bits: int) -> None:
    """Their range is empty below 4 groups; zoo's extension scores k = 0 and k = 1 with their KL (each window's,
    averaged) and quantizes as their code does at the k it keeps."""
    from safetensors.torch import load_file

    t = load_file(str(WINDOWS))
    w, x = t["narrow.w"], t["narrow.x"]
    hessian = native.Hessian(w.shape[1], "cpu")
    for xi in x:
        hessian.hook(None, (xi.unsqueeze(0),), None)
    plan = slimllm.Plan(w, hessian.per_sequence(), bits, 128, 0.01, 1.0, "kl")
    for xi in x:
        plan.observe(xi)
    ours = [sum(e) / len(e) for e in zip(*plan.errors, strict=True)]
    assert ours == pytest.approx(t[f"narrow.kl{bits}"].tolist(), rel=1e-4)
    k = int(t[f"narrow.kl{bits}"].argmin())
    _, q = _through_native(w, x, bits)
    assert _same(q, t[f"narrow.q{bits}_k{k}"])


def test_the_hessian_counts_sequences_and_per_sequence_is_gptqs_normalization() -> None:
    """GPTQ's add_batch: H = 2/sequences sum(x x^T); zoo's h stays per token."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 16, 8, generator=g)
    hessian = native.Hessian(8, "cpu")
    for xi in x:
        hessian.hook(None, (xi.unsqueeze(0),), None)
    rows = x.reshape(-1, 8)
    assert (hessian.count, hessian.sequences) == (48, 3)
    assert torch.allclose(hessian.h, 2 / 48 * rows.T @ rows, rtol=1e-5)
    assert torch.allclose(hessian.per_sequence(), 2 / 3 * rows.T @ rows, rtol=1e-5)


def test_without_windows_or_with_the_option_k_is_scored_from_h() -> None:
    """``score: second-order`` observes nothing; a caller with (W, H) alone gets that score too."""
    from safetensors.torch import load_file

    t = load_file(str(WINDOWS))
    w, x = t["wide.w"], t["wide.x"]
    alloc, _ = _through_native(w, x, 2, score="second-order")
    assert alloc == []  # no observer: nothing replayed
    h = 2 / 256 * x.reshape(-1, 768).T @ x.reshape(-1, 768) * 64
    assert slimllm.allocate(w, h, 2, 128) == slimllm.allocate(w, h, 2, 128, score="second-order")
    assert slimllm.allocate(w, h, 2, 128, windows=list(x)) == t["wide.alloc2"].tolist()


def _pair(out: int, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, cols, generator=g) ** 3 * 0.02  # heavy tails
    x = torch.randn(512, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.1 + torch.randn(512, cols, generator=g)
    return w, 2 / x.shape[0] * x.T @ x


@pytest.mark.parametrize(("groups", "ks"), [(1, [0]), (2, [0, 1]), (3, [0, 1]), (4, [1]), (5, [1]), (8, [1, 2, 3])])
def test_k_is_searched_over_the_authors_range_and_zoos_below_four_groups(groups: int, ks: list[int]) -> None:
    assert slimllm.candidates(groups) == ks


def test_pairs_move_the_least_salient_down_and_the_most_salient_up() -> None:
    salience = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 2.0])
    assert slimllm.pairs(salience, 2, 2) == [2, 1, 3, 2, 3, 1]
    assert slimllm.pairs(salience, 0, 3) == [3] * 6


def test_the_score_is_the_centered_output_error_for_every_k() -> None:
    w, h = _pair(24, 768, 0)
    salience = slimllm.group_salience(w, obs.inverse_hessian_factor(h, 0.01), 128)
    scores = slimllm_obs.output_scores(w, h, 2, 128, salience)
    for k, score in zip(slimllm.candidates(6), scores, strict=True):
        q = torch.cat(
            [(slimllm.binarize_authors(w[:, a : a + 128]) if b == 1 else obs.uniform(w[:, a : a + 128], b, dim=1))
             for a, b in zip(range(0, 768, 128), slimllm.pairs(salience, k, 2), strict=True)], dim=1,
        )  # fmt: skip
        d = (q - w) - (q - w).mean(dim=0, keepdim=True)  # softmax ignores a shift shared by a token's outputs
        assert score == pytest.approx(float(torch.trace(d @ h @ d.T)), rel=1e-4)


def test_sqc_beats_min_max_on_its_error_and_weights_the_salient_elements() -> None:
    w, h = _pair(32, 128, 1)
    u = obs.inverse_hessian_factor(h, 0.01)

    def err(scale: torch.Tensor, zero: torch.Tensor, bits: int, part: torch.Tensor | None = None) -> torch.Tensor:
        top = 2**bits - 1
        q = (torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, top) - zero[:, None]) * scale[:, None]
        e = (q - w).abs() ** slimllm.SQC_NORM
        return (e if part is None else e * part).sum(1)

    for bits in (2, 3):
        scale, zero = slimllm.sqc(w, u, bits, mid_zero=False)
        lo, hi = w.amin(1).clamp(max=0), w.amax(1).clamp(min=0)
        plain = (hi - lo) / (2**bits - 1)
        assert (err(scale, zero, bits) <= err(plain, torch.round(-lo / plain), bits) * (1 + 1e-6)).all()
        assert ((scale / plain - 1).abs() <= 0.1 + 1e-6).all()  # range factors in [0.9, 1.1]
        mid = slimllm.sqc(w, u, bits, mid_zero=True)[1]
        assert (mid == 2**bits / 2).all()
    s = w**2 / torch.diag(u).unsqueeze(0) ** 2
    salient = (s >= s[((s - s.mean()) / s.std()).abs() > 2].min()).float()
    plain_fit, weighted = slimllm.sqc(w, u, 2, False), slimllm.sqc(w, u, 2, False, lam=20.0)
    assert (err(*weighted, 2, salient) <= err(*plain_fit, 2, salient) * (1 + 1e-5)).all()
    assert not torch.equal(weighted[0], plain_fit[0])


def test_one_bit_groups_are_the_authors_binarization() -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.cat([torch.randn(16, 128, generator=g), 0.01 * torch.randn(16, 128, generator=g) + 0.003], dim=1)
    h = torch.eye(256) * 2  # no compensation between columns: each group is rounded as it came
    assert slimllm.allocate(w, h, 2, 128) == [3, 1]
    q = slimllm.quantize_weight(w, h, 2).weight
    low = w[:, 128:]
    mu = low.mean(1, keepdim=True)
    assert torch.allclose(q[:, 128:], mu + low.abs().mean(1, keepdim=True) * torch.sign(low - mu))
    assert max(len(torch.unique(r)) for r in q[:, :128]) <= 8


@pytest.mark.parametrize("bits", [2, 3])
def test_a_leading_low_group_keeps_the_mid_zero_as_in_the_authors_code(bits: int, monkeypatch) -> None:  # noqa: ANN001
    """At W3 a 2-bit group before every group at >= 3 bits is fitted with the mid zero; at W2 the low groups are
    1-bit (binarized, no grid), so every grid is asymmetric."""
    w, h = _pair(32, 1024, 3)
    alloc = slimllm.allocate(w, h, bits, 128)
    if bits == 3:  # group 0 one bit down, so it comes before every group at >= 3 bits
        order = slimllm.group_salience(w, obs.inverse_hessian_factor(slimllm._authors_hessian(h), 0.01), 128).argsort()
        first = [*range(int(order[0]) * 128, int(order[0]) * 128 + 128)]
        cols = torch.tensor(first + [c for c in range(1024) if c not in set(first)])
        w, h = w[:, cols].contiguous(), h[cols][:, cols].contiguous()
        alloc = slimllm.allocate(w, h, bits, 128)
        assert alloc[0] == bits - 1
    seen: list[bool] = []
    real = slimllm.sqc

    def spy(w1, u1, b, mid_zero, lam=1.0):  # noqa: ANN001, ANN202
        seen.append(mid_zero)
        return real(w1, u1, b, mid_zero, lam)

    monkeypatch.setattr(slimllm, "sqc", spy)
    slimllm.quantize_weight(w, h, bits)
    assert len(seen) == sum(b > 1 for b in alloc)
    assert seen[0] == (bits == 3) and not any(seen[1:])
