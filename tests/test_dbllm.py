"""DB-LLM's deviation-aware distillation (zoo/methods/dad.py): the loss, the FDB Linear's gradient, and
distillation on the tiny base (a cheap FDB start, no OBS loop, so the file stays fast)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.conftest import RECIPES
from zoo.methods import dad, dbllm

WINDOWS, SEQLEN = 8, 128


def _logits(*probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_ambiguous_tokens_weigh_more() -> None:
    confident, unsure = [0.97, 0.01, 0.01, 0.01], [0.4, 0.3, 0.2, 0.1]
    teacher = _logits(confident, confident, unsure, unsure)
    student = _logits(confident, unsure, confident, unsure)
    _, log_t, log_s = dad.token_kl(student, teacher)
    w = dad.ambiguity_weights(log_t, log_s, 1.0)
    assert w[0] < w[1] and w[0] < w[2] and w[1] < w[3] and w[2] < w[3]  # both unsure weighs most, both sure least
    assert torch.allclose(w[1], w[2])  # symmetric in teacher and student
    h = -(torch.tensor(unsure) * torch.tensor(unsure).log()).sum() / math.log(4)
    assert torch.allclose(w[3], h)  # the normalized entropy itself when both have it
    sharper = dad.ambiguity_weights(log_t, log_s, 2.0)
    assert (sharper / sharper[3])[0] < (w / w[3])[0]  # a larger exponent focuses harder
    assert torch.allclose(dad.ambiguity_weights(log_t, log_s, 0.0), torch.ones(4))


def test_the_loss_is_the_weighted_kl_and_zero_at_the_teacher() -> None:
    teacher = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    student = teacher + 0.5 * torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    kl, log_t, log_s = dad.token_kl(student, teacher)
    assert torch.allclose(kl, torch.nn.functional.kl_div(log_s, log_t, log_target=True, reduction="none").sum(-1))
    assert torch.allclose(dad.dad_loss(student, teacher, 0.0), kl.mean())  # gamma 0: plain distillation
    w = dad.ambiguity_weights(log_t, log_s, 1.0)
    assert torch.allclose(dad.dad_loss(student, teacher, 1.0), (w * kl).sum() / w.sum())
    assert float(dad.dad_loss(teacher, teacher, 1.0)) == pytest.approx(0.0, abs=1e-6)
    s = student.clone().requires_grad_(True)
    dad.dad_loss(s, teacher, 1.0).backward()
    grad = s.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_fdb_linear_gradient_matches_autograd() -> None:
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, (6, 10), generator=g).to(torch.uint8)  # 10 columns: a last, short block
    a1, a2, c = (torch.randn(6, 3, generator=g, dtype=torch.float64).requires_grad_(True) for _ in range(3))
    x = torch.randn(2, 3, 10, generator=g, dtype=torch.float64, requires_grad=True)
    fn = dad._fdb_linear()
    assert torch.autograd.gradcheck(lambda x, a1, a2, c: fn.apply(x, codes, a1, a2, c, 4), (x, a1, a2, c))
    w = dad.decode(codes, a1, a2, c, 4)
    assert max(len(torch.unique(w[r, b * 4 : b * 4 + 4])) for r in range(6) for b in range(3)) <= 4


def _quantized_linears(model: Any) -> list[torch.nn.Linear]:
    return [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n]


def _kl(student: Any, teacher: Any, windows: list[list[int]]) -> float:
    """Measured here, apart from dad.mean_kl: the mean per-token KL(teacher || student)."""
    with torch.no_grad():
        ids = torch.tensor(windows)
        log_t = torch.log_softmax(teacher(input_ids=ids).logits.float(), -1)
        log_s = torch.log_softmax(student(input_ids=ids).logits.float(), -1)
    return float((log_t.exp() * (log_t - log_s)).sum(-1).mean())


@pytest.fixture(scope="module")
def tiny() -> SimpleNamespace:
    """The tiny base, FDB-quantized block by block (no error compensation), its codes, and a context."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.data.calibration import draw, token_ids
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    path = builtin_path("tiny-llama3")

    def load() -> Any:
        return AutoModelForCausalLM.from_pretrained(path).eval()

    windows = draw(token_ids(corpus.train_text(), AutoTokenizer.from_pretrained(path)), WINDOWS, SEQLEN, 0)
    model, table = load(), {}
    for m in _quantized_linears(model):
        r = dbllm.quantize_weight(m.weight.data.float(), torch.eye(m.in_features), 128, 0.0)
        m.weight.data = r.weight.to(m.weight.dtype)
        table[m] = (r.codes, r.levels)
    recipe = SimpleNamespace(name="tiny-dad", calibration=SimpleNamespace(seed=0))
    ctx = SimpleNamespace(device="cpu", data=SimpleNamespace(windows=windows), load_model=load, recipe=recipe)
    return SimpleNamespace(model=model, table=table, ctx=ctx, load=load, windows=windows)


def _distilled(tiny: SimpleNamespace, epochs: int = 1) -> tuple[Any, dict[str, Any]]:
    import copy

    model = copy.deepcopy(tiny.model)
    names = {m: n for n, m in tiny.model.named_modules()}
    table = {model.get_submodule(names[m]): v for m, v in tiny.table.items()}
    info = dad.distill(tiny.ctx, model, table, epochs, 5e-4, 1.0, 128)
    return model, info


def test_distillation_brings_fdb_closer_to_the_16_bit_base(tiny: SimpleNamespace) -> None:
    teacher = tiny.load()
    before = _kl(tiny.model, teacher, tiny.windows)
    student, info = _distilled(tiny)
    after = _kl(student, teacher, tiny.windows)
    assert after < 0.9 * before, (before, after)
    assert info["distillation_steps"] == WINDOWS and info["distillation_kl"]["after"] < info["distillation_kl"]["before"]
    assert next(student.parameters()).dtype == next(tiny.model.parameters()).dtype
    assert not any(hasattr(m, "codes") or "forward" in vars(m) for m in _quantized_linears(student))  # plain Linears again
    changed = [
        not torch.equal(a.weight, b.weight)
        for a, b in zip(_quantized_linears(tiny.model), _quantized_linears(student), strict=True)
    ]
    assert all(changed)  # every FDB Linear's scales moved
    again, _ = _distilled(tiny)
    assert all(
        torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values(), strict=True)
    )  # seeded


def test_distilled_row_blocks_keep_four_levels_and_their_codes(tiny: SimpleNamespace) -> None:
    student, _ = _distilled(tiny)
    for before, after in zip(_quantized_linears(tiny.model), _quantized_linears(student), strict=True):
        w = after.weight.float()
        blocks = w.view(w.shape[0], -1, 128)
        assert max(len(torch.unique(blocks[r, b])) for r in range(blocks.shape[0]) for b in range(blocks.shape[1])) <= 4
        codes = tiny.table[before][0].long()  # the codes are kept: one value per (row, block, code)
        rows, cols = torch.meshgrid(torch.arange(w.shape[0]), torch.arange(w.shape[1]), indexing="ij")
        key = ((rows * blocks.shape[1] + cols // 128) * 4 + codes).flatten()
        lo = torch.full((key.max() + 1,), math.inf).scatter_reduce(0, key, w.flatten(), "amin")
        hi = torch.full((key.max() + 1,), -math.inf).scatter_reduce(0, key, w.flatten(), "amax")
        assert torch.equal(lo[key], hi[key])


def test_the_study_cell_distils_by_default() -> None:
    from zoo.catalog import load

    assert dbllm.DBLLMParams().distillation is True
    for name in ("llama3-8b-dbllm-2bit", "tiny-llama3-dbllm-2bit"):
        assert load(name, RECIPES).params.distillation is True
    assert dbllm.DBLLMParams(distillation=False).distillation is False  # FDB alone stays a choice


def test_a_row_with_one_outlier_still_fits() -> None:
    """Outliers far outside the rest put every other weight on code 0 and themselves on code 3, so b1 = b2 in
    the whole block: the least-squares system is singular (a float32 solve failed on the outlier proxy base)."""
    import torch

    from zoo.methods.dbllm import fdb_levels, quantize_weight

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(8, 256, generator=gen) * 0.01
    w[:, :40] = 1.0
    levels = fdb_levels(w[:, :128])
    assert torch.isfinite(levels).all()
    assert torch.allclose(levels[:, 3], torch.ones(8), atol=1e-5)  # the outliers are kept exactly
    assert torch.allclose(levels[:, 0], w[:, 40:128].mean(1), atol=1e-5)  # the rest at their mean
    x = torch.randn(512, 256, generator=gen)
    q = quantize_weight(w, x.t() @ x / 512)
    assert torch.isfinite(q.weight).all()
