"""QuIP (Chee et al. 2023, arXiv 2307.13304): incoherence processing plus LDLQ adaptive rounding.

``variant: authors`` (the default) is the algorithm as the authors' code runs it with
``--quant ldlq --incoh_processing`` (Cornell-RelaxML/QuIP: ``--pre_rescale --pre_proj --pre_gptqH --qfn b``,
one greedy pass): the weight's columns and the Hessian are rescaled by (diag H / diag W^T W)^(1/4);
both sides are rotated by fresh random orthogonal butterflies per Linear (two factors of the dimension,
a block of Haar-random orthogonal matrices each, between random permutations), the Hessian normalized
to trace n plus 0.01 I and damped as GPTQ does; the rotated weight is put on one symmetric grid for the
whole matrix, scale 2.4 x its RMS (values beyond it clipped), rounded by LDLQ (last column first, each
column corrected by the LDL factor of H for the rounding errors of the columns after it) and refined by
one greedy coordinate pass over the columns; the result is rotated and rescaled back.

``variant: zoo-obs`` is zoo's earlier design, kept by name: Kronecker rotations of two Haar factors
without permutations, the same for every Linear of a shape, no rescaling, a per-row asymmetric min-max
grid, and the OBS loop of ``obs.py`` (GPTQ-equivalent LDLQ) without the greedy pass.

Bits per weight: code bits are the recipe's bits; with metadata, the authors' variant adds one 16-bit
scale per matrix and a 16-bit rescaling factor per input column, zoo-obs a 16-bit scale and zero point
per output row; the rotations are regenerated from the seed and cost nothing to store.

Parity: ``tests/test_parity.py`` holds the authors' variant against their code on fixed (W, H) pairs.
"""

from typing import Any, Literal

from zoo.methods.base import BuildContext, MethodParams, MethodSpec
from zoo.methods.rotations import butterfly, rotation


class QuIPParams(MethodParams):
    incoherence: Literal["kronecker"] = "kronecker"
    dampening_frac: float = 0.01
    seed: int = 0
    greedy_passes: int = 1  # the authors' --npasses (authors' variant only)
    # "authors": the authors' algorithm (the default); "zoo-obs": zoo's earlier variant
    variant: Literal["authors", "zoo-obs"] = "authors"


SPEC = MethodSpec(
    name="quip",
    builder="zoo.methods.quip:quantize",
    title="QuIP",
    paper="Chee et al. 2023, QuIP: 2-Bit Quantization of LLMs With Guarantees, arXiv 2307.13304",
    params=QuIPParams,
    weight_bits=(2, 3, 4),
    grouped=False,
    symmetric=False,
    formats=("fake",),
)


def ldlq(w: Any, h: Any, top: int, greedy_passes: int = 1) -> Any:
    """Integer codes in [0, top] for ``w`` (already on the grid's scale) by LDLQ, last column first, then
    ``greedy_passes`` coordinate passes that re-round each column given all the others."""
    import torch

    d = h.shape[0]
    lower = torch.linalg.cholesky(h)
    lower = lower / torch.diag(lower).unsqueeze(0) - torch.eye(d, device=h.device)  # unit-lower part, strictly
    q = w.clone()
    for i in reversed(range(d)):
        feedback = (w[:, i + 1 :] - q[:, i + 1 :]) @ lower[i + 1 :, i]
        q[:, i] = torch.floor(w[:, i] + feedback + 0.5).clamp(0, top)
    s = q - w
    hn = h / torch.diag(h).max()
    for _ in range(greedy_passes):
        before = q.clone()
        for i in reversed(range(d)):
            step = q[:, i] - torch.round(q[:, i] - (s @ hn[:, i]) / hn[i, i])
            q[:, i] -= step
            s[:, i] -= step
        q = q.clamp(0, top)
        if torch.equal(before, q):
            break
    return q


def _authors(w: Any, h: Any, bits: int, gen: Any, dampening: float, greedy_passes: int) -> Any:
    import torch

    from zoo.methods import obs

    h = h / h.abs().max()
    s = (torch.diag(h).clamp(min=1e-8) / torch.diag(w.T @ w).clamp(min=1e-8)).sqrt().sqrt().clamp(min=1e-8)
    w, h = w * s.unsqueeze(0), h / s.unsqueeze(0) / s.unsqueeze(1)
    u, v = butterfly(w.shape[0], gen).to(w.device), butterfly(w.shape[1], gen).to(w.device)
    h = h * (h.shape[0] / (torch.trace(h) + 1e-8)) + 1e-2 * torch.eye(h.shape[0], device=h.device)
    w, h = u @ w @ v.T, v @ h @ v.T
    w[:, torch.diag(h) == 0] = 0
    h = obs.damped(h, dampening)
    top = 2**bits - 1
    scale = 2.4 * w.square().mean().sqrt() + 1e-16  # one symmetric grid for the whole matrix
    codes = ldlq(((w / scale + 1) / 2 * top).clamp(0, top), h, top, greedy_passes)
    q = (codes / top * 2 - 1) * scale
    # packed: the codes, the grid's scale and the rescaling; the rotations are regenerated from the seed
    packed = {"banks": [{"name": "q", "rule": "quip", "bits": bits, "group": w.shape[1], "select": ("all",),
                         "scale": scale, "codes": codes}], "s": s, "post": {"variant": "authors"}}  # fmt: skip
    return (u.T @ q @ v) / s.unsqueeze(0), packed


def _zoo_obs(w: Any, h: Any, bits: int, seed: int, dampening: float) -> Any:
    from zoo.methods import obs

    u, v = rotation(w.shape[0], seed, w.device), rotation(w.shape[1], seed + 1, w.device)
    wt, ht = u @ w @ v.T, v @ h @ v.T
    grids: list[Any] = []
    grid = obs.row_grid(wt, bits, grids)  # per channel: one grid for the whole row, fixed before rounding

    def block(w1: Any, h1: Any, first: int) -> Any:
        return lambda i, col: grid(col)

    q = obs.quantize(wt, ht, block, dampening=dampening)
    scale, zero = grids[0]
    packed = {"banks": [{"name": "q", "rule": "grid", "bits": bits, "group": w.shape[1], "select": ("all",),
                         "scale": scale, "zero": zero}], "q": q, "post": {"variant": "zoo-obs", "seed": seed}}  # fmt: skip
    return u.T @ q @ v, packed


def quantize_weight(
    w: Any, h: Any, bits: int, seed: int = 0, dampening: float = 0.01, variant: str = "authors", greedy_passes: int = 1
) -> Any:
    """``seed`` fixes the rotations; the authors' variant draws a fresh pair per call from it, so a build
    passes each Linear its own seed."""
    import torch

    from zoo.methods.native import Quantized

    code = float(w.numel() * bits)
    if variant == "authors":
        gen = torch.Generator().manual_seed(seed)
        q, packed = _authors(w.float(), h.float(), bits, gen, dampening, greedy_passes)
        packed["post"]["seed"] = seed
        return Quantized(q, bits=code + 16 + 16 * w.shape[1], code_bits=code, layout=packed)
    q, packed = _zoo_obs(w, h, bits, seed, dampening)
    return Quantized(q, bits=code + w.shape[0] * 32, code_bits=code, layout=packed)


def quantize(ctx: BuildContext[QuIPParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    bits = int(ctx.recipe.weights.bits)
    scheme = {"weights": {"bits": bits, "granularity": "channel", "incoherence": p.incoherence, "seed": p.seed,
                          "variant": p.variant}}  # fmt: skip
    count = [0]

    def one(w: Any, h: Any) -> Any:
        count[0] += 1  # the authors' variant: fresh rotations per Linear, reproducible from the recipe's seed
        seed = p.seed * 1_000_003 + count[0] if p.variant == "authors" else p.seed
        return quantize_weight(w, h, bits, seed, p.dampening_frac, p.variant, p.greedy_passes)

    return native.run(ctx, one, scheme)
