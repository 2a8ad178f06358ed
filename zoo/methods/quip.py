"""QuIP (Chee et al. 2023, arXiv 2307.13304): incoherence processing plus LDLQ adaptive rounding.

Implemented: both sides of every weight (and its Hessian) are rotated by random orthogonal matrices
built as Kronecker products of two small Haar-random factors, as QuIP does, W' = U W V^T and
H' = V H V^T; W' is rounded by LDLQ (the OBS loop of ``obs.py``, equivalent to GPTQ's) onto a
per-row asymmetric min-max grid at the recipe's bits; the result is rotated back. Not implemented:
QuIP's diagonal rescaling of W and H before the rotation, and its greedy local-search refinement.

Bits per weight: code bits are the recipe's bits; with metadata, add a 16-bit scale and zero point per
output row; the rotations are regenerated from the seed and cost nothing to store.

Faithfulness: this is zoo's variant, not the authors' algorithm; ``zoo/fidelity.py`` says where it
differs and by how much (measured against their code), and the card and ``zoo show`` print it.
"""

from typing import Any, Literal

from zoo.methods.base import BuildContext, MethodParams, MethodSpec


class QuIPParams(MethodParams):
    incoherence: Literal["kronecker"] = "kronecker"
    dampening_frac: float = 0.01
    seed: int = 0


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


def _factors(n: int) -> tuple[int, int]:
    """n = a * b with a <= b as close as possible (QuIP's Kronecker shape)."""
    a = int(n**0.5)
    while n % a:
        a -= 1
    return a, n // a


def _haar(n: int, seed: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def rotation(n: int, seed: int, device: Any = "cpu") -> Any:
    import torch

    a, b = _factors(n)
    return torch.kron(_haar(a, seed * 7919 + n), _haar(b, seed * 104729 + n)).float().to(device)


def quantize_weight(w: Any, h: Any, bits: int, seed: int = 0, dampening: float = 0.01) -> Any:
    from zoo.methods import obs
    from zoo.methods.native import Quantized

    u, v = rotation(w.shape[0], seed, w.device), rotation(w.shape[1], seed + 1, w.device)
    wt, ht = u @ w @ v.T, v @ h @ v.T
    grid = obs.row_grid(wt, bits)  # per channel: one grid for the whole row, fixed before rounding

    def block(w1: Any, h1: Any, first: int) -> Any:
        return lambda i, col: grid(col)

    q = obs.quantize(wt, ht, block, dampening=dampening)
    return Quantized(u.T @ q @ v, bits=float(w.numel() * bits + w.shape[0] * 32), code_bits=float(w.numel() * bits))


def quantize(ctx: BuildContext[QuIPParams]) -> dict[str, Any]:
    from zoo.methods import native

    p = ctx.params
    bits = int(ctx.recipe.weights.bits)
    scheme = {"weights": {"bits": bits, "granularity": "channel", "incoherence": p.incoherence, "seed": p.seed}}
    return native.run(ctx, lambda w, h: quantize_weight(w, h, bits, p.seed, p.dampening_frac), scheme)
