"""DB-LLM's deviation-aware distillation (DAD): the FDB model learns from the 16-bit base, weighted
towards the tokens that are ambiguous to both (Chen et al. 2024, arXiv 2402.11960).

What the paper says (abstract and section summaries; the authors published no code): a 2-bit model's
predictions are distorted at the macro level, the deviation tied to how ambiguous a sample is; DAD
distils from the full-precision teacher with the loss re-weighted by an entropy-based indicator, the
teacher's and the student's prediction entropies, so that ambiguous samples count more.

zoo's reading, with the choices that are zoo's and not the paper's (its equations and hyper-parameters
were not at hand):

- Per token t, KL(p_T || p_S) between the teacher's and the student's next-token distributions,
  weighted by w_t = (h_T * h_S) ** (gamma / 2), where h = H(p) / log V is the entropy normalized to
  [0, 1]: the geometric mean of the two uncertainties, high only when both models hesitate. The loss
  is sum(w * KL) / sum(w), so gamma = 0 is plain distillation (zoo's choice of form, normalization and
  default gamma = 1). The weights are constants to the gradient (zoo's choice): otherwise the student
  could lower its loss by growing confident rather than by agreeing with the teacher.
- Trained: each Linear's per-row-and-block a1, a2 and c, with the binary codes b1, b2 of the FDB pass
  fixed, so every row-block still decodes to at most 4 values and the bits per weight do not change.
  (In the paper the binaries threshold latent weights that train too, through a straight-through
  estimator, so its codes can flip.)
- Data: the recipe's calibration windows, one window a step, ``epochs`` passes in an order drawn from
  the calibration seed; Adam with a cosine decay to 0 (zoo's choices; the paper distils on data the
  teacher generates, "data-free"). The defaults (2 epochs, lr 5e-4, gamma 1) are zoo's, picked on the
  tiny base: lr 1e-4 / 3e-4 / 5e-4 / 1e-3 gave 56.82 / 56.79 / 56.74 / 56.76 pydoc perplexity, gamma
  0 / 1 / 2 at 3e-4 56.83 / 56.79 / 56.78, 4 epochs ~0.1 better at twice the time (FDB alone 57.06,
  base 56.25; measured before FDB's fit moved to a float64 pseudo-inverse, after which the default gives 56.76).
  The teacher is recomputed window by window instead of stored: its logits for all windows of an 8B
  model would take ~67 GB.

Cost: the teacher (a second copy of the base from ``ctx.load_model()``) and the student sit whole on
``ctx.device`` together: for LLaMA-3-8B, 2 x 16 GB in bf16, plus the activations of one window kept
for the backward pass (~10-20 GB at 2048 tokens) and Adam's state for a1, a2, c (3 / 128 of the
weights, fp32: ~2.3 GB); a 70B model does not fit one accelerator this way. Between the FDB pass
and distillation the codes wait on the host, a byte a weight (8 GB for 8B). The decoded weights are
not kept for the backward pass: ``FDBLinear`` recomputes them from the codes. On the CPU everything
runs in fp32 (bf16 matmuls are slower there) and the checkpoint goes back to the base's dtype.
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger(__name__)


def token_kl(student_logits: Any, teacher_logits: Any) -> tuple[Any, Any, Any]:
    """Per-token KL(p_T || p_S) [..., ] and both log-distributions (fp32)."""
    import torch

    log_s = torch.log_softmax(student_logits.float(), dim=-1)
    log_t = torch.log_softmax(teacher_logits.float(), dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1), log_t, log_s


def ambiguity_weights(log_t: Any, log_s: Any, gamma: float) -> Any:
    """w = (h_T * h_S) ** (gamma / 2) per token, h the entropy over log V; no gradient flows through it."""
    import torch

    with torch.no_grad():
        scale = math.log(log_t.shape[-1])
        h_t = -(log_t.exp() * log_t).sum(-1) / scale
        h_s = -(log_s.exp() * log_s).sum(-1) / scale
        return (h_t.clamp(min=0) * h_s.clamp(min=0)) ** (gamma / 2)


def dad_loss(student_logits: Any, teacher_logits: Any, gamma: float = 1.0) -> Any:
    """The ambiguity-weighted mean of the per-token KL to the teacher (gamma = 0: the plain mean)."""
    kl, log_t, log_s = token_kl(student_logits, teacher_logits)
    w = ambiguity_weights(log_t, log_s, gamma)
    return (w * kl).sum() / w.sum().clamp(min=1e-12)


def decode(codes: Any, a1: Any, a2: Any, c: Any, group: int) -> Any:
    """W = c + a1 * b1 + a2 * b2 [rows, cols] from codes q = 2 * b1 + b2 and per-row-block a1, a2, c."""
    b1, b2 = (codes >= 2).to(a1.dtype), (codes % 2).to(a1.dtype)

    def spread(t: Any) -> Any:
        return t.repeat_interleave(group, dim=1)[:, : codes.shape[1]]

    return spread(c) + spread(a1) * b1 + spread(a2) * b2


def _per_block(g: Any, group: int) -> Any:
    """Sum [rows, cols] over each block of ``group`` columns: [rows, blocks]."""
    import torch

    rows, cols = g.shape
    blocks = -(-cols // group)
    return torch.nn.functional.pad(g, (0, blocks * group - cols)).view(rows, blocks, group).sum(-1)


def _fdb_linear() -> Any:
    """y = x W^T with W decoded from fixed codes; the backward recomputes W rather than keeping it."""
    import torch

    class FDBLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, codes: Any, a1: Any, a2: Any, c: Any, group: int) -> Any:
            ctx.save_for_backward(x, codes, a1, a2, c)
            ctx.group = group
            return torch.nn.functional.linear(x, decode(codes, a1, a2, c, group).to(x.dtype))

        @staticmethod
        def backward(ctx: Any, gy: Any) -> Any:
            x, codes, a1, a2, c = ctx.saved_tensors
            gx = gy @ decode(codes, a1, a2, c, ctx.group).to(gy.dtype) if ctx.needs_input_grad[0] else None
            gw = gy.reshape(-1, gy.shape[-1]).t().float() @ x.reshape(-1, x.shape[-1]).float()  # [out, in]
            b1, b2 = (codes >= 2).float(), (codes % 2).float()
            blocks = [_per_block(g, ctx.group).to(a1.dtype) for g in (gw * b1, gw * b2, gw)]
            return gx, None, *blocks, None

    return FDBLinear


def attach(table: dict[Any, tuple[Any, Any]], group: int, device: str) -> list[tuple[Any, Any]]:
    """Route each FDB Linear through (codes, a1, a2, c) on ``device``; its stored weight is freed until
    ``detach`` writes the trained one back. Returns (Linear, trainable ParameterDict) pairs."""
    import torch

    fn = _fdb_linear()
    pairs = []
    for module, (codes, levels) in table.items():
        lv = levels.float().to(device)
        p = torch.nn.ParameterDict({"a1": lv[..., 2] - lv[..., 0], "a2": lv[..., 1] - lv[..., 0], "c": lv[..., 0].clone()})
        q = codes.to(device)

        def forward(x: Any, q: Any = q, p: Any = p, bias: Any = module.bias) -> Any:
            y = fn.apply(x, q, p["a1"], p["a2"], p["c"], group)
            return y if bias is None else y + bias

        module.forward = forward
        module.codes = q
        module.weight.data = torch.empty(0, dtype=module.weight.dtype, device=device)
        pairs.append((module, p))
    return pairs


def detach(pairs: list[tuple[Any, Any]], group: int, dtype: Any) -> None:
    """Write each Linear's trained weight back (in ``dtype``) and restore its own forward."""
    import torch

    with torch.no_grad():
        for module, p in pairs:
            module.weight.data = decode(module.codes, p["a1"], p["a2"], p["c"], group).to(dtype)
            del module.forward, module.codes


KL_WINDOWS = 8  # the record's KL before and after, on the first windows: all 32 would cost a third of DAD


def mean_kl(student: Any, teacher: Any, windows: list[list[int]], device: str) -> float:
    """The plain per-token KL to the teacher, averaged over ``windows`` (what DAD should lower)."""
    import torch

    total = 0.0
    with torch.no_grad():
        for w in windows:
            ids = torch.tensor([w], device=device)
            total += float(token_kl(student(input_ids=ids).logits, teacher(input_ids=ids).logits)[0].mean())
    return total / len(windows)


def distill(
    ctx: Any, model: Any, table: dict[Any, tuple[Any, Any]], epochs: int, lr: float, gamma: float, group: int
) -> dict[str, Any]:
    """Train ``model``'s FDB scales (``table``: Linear -> (codes, levels)) against the 16-bit base on the
    calibration windows; ``model`` ends on the host in its own dtype. Returns the scheme's entries."""
    import torch

    from zoo.progress import reporter

    dev, windows = ctx.device, ctx.data.windows
    dtype = next(model.parameters()).dtype
    compute = torch.float32 if dev == "cpu" else dtype
    teacher = ctx.load_model()
    for m in (teacher, model):
        m.config.use_cache = False
        m.requires_grad_(False)
        m.to(dev, compute)
    pairs = attach(table, group, dev)
    params = [t for _, p in pairs for t in p.values()]
    before = mean_kl(model, teacher, windows[:KL_WINDOWS], dev)
    steps = epochs * len(windows)
    opt = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.0)
    order = torch.Generator().manual_seed(ctx.recipe.calibration.seed)
    tick = reporter(f"{ctx.recipe.name} distillation")
    step = 0
    for _ in range(epochs):
        for i in torch.randperm(len(windows), generator=order).tolist():
            ids = torch.tensor([windows[i]], device=dev)
            with torch.no_grad():
                target = teacher(input_ids=ids).logits
            loss = dad_loss(model(input_ids=ids).logits, target, gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            step += 1
            tick(step, steps)
    after = mean_kl(model, teacher, windows[:KL_WINDOWS], dev)
    del teacher
    detach(pairs, group, dtype)
    model.to("cpu", dtype)
    log.info("%s: DAD, %d steps: KL to the 16-bit base %.4f -> %.4f", ctx.recipe.name, steps, before, after)
    return {
        "distillation_steps": steps,
        "distillation_lr": lr,
        "distillation_gamma": gamma,
        "distillation_kl": {"before": round(before, 4), "after": round(after, 4), "windows": min(KL_WINDOWS, len(windows))},
    }
