"""SliM-LLM's authors' variant piece by piece: the k candidates, the output score, SQC, 1-bit groups and the
mid-range zero point their quantizer's flag gives a leading low group (tests/test_parity.py holds the whole
against their code)."""

from __future__ import annotations

import pytest
import torch

from zoo.methods import obs, slimllm


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
    scores = slimllm.output_scores(w, h, 2, 128, salience)
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
