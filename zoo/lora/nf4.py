"""4-bit NormalFloat in plain torch: the quantizer QLoRA's base is stored in, on any device.

bitsandbytes does the same on CUDA (and, in recent releases, on the CPU); zoo keeps its own copy so
that IR-QLoRA's tau search can score hundreds of candidate offsets per block in one vectorised pass,
so the code entropy can be measured, and so a machine without bitsandbytes still trains and loads
the tiny recipes. Layout follows bitsandbytes: the weight is flattened row-major and cut into blocks
of ``blocksize`` values, each scaled by its absolute maximum; with double quantization the block
maxima are themselves stored as 8-bit codes (blocks of 256) of their distance from their mean.
Tests hold this module to bitsandbytes' codebooks and codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

NF4_OFFSET = 0.9677083  # QLoRA's choice: the outermost quantile, so that +-1 are codes
ABSMAX_BLOCK = 256  # block size of the double quantization of the scales (bitsandbytes' default)


@cache
def codebook() -> Any:
    """The 16 NF4 values: quantiles of N(0, 1), 8 positive and 7 negative plus an exact zero, scaled to [-1, 1]."""
    import torch

    def quantiles(n: int) -> Any:
        p = torch.linspace(NF4_OFFSET, 0.5, n, dtype=torch.float64)[:-1]
        return torch.special.ndtri(p)

    values = torch.cat([quantiles(9), torch.zeros(1, dtype=torch.float64), -quantiles(8)])
    values = values / values.abs().max()
    return values.sort().values.float()


@cache
def dynamic_map() -> Any:
    """The signed 8-bit "dynamic tree" map bitsandbytes stores the block maxima in (256 values in [-1, 1]).

    For each of 7 decades 10^-6 .. 10^0, 2^i evenly spaced mantissas in [0.1, 1] (i = 0..6), both signs,
    plus 0 and 1: dense near zero, where small scales live."""
    import torch

    values = [0.0, 1.0]
    for i in range(7):
        edges = torch.linspace(0.1, 1.0, 2**i + 1, dtype=torch.float64)
        mids = ((edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - 6)).tolist()
        values += mids + [-m for m in mids]
    return torch.tensor(sorted(values), dtype=torch.float32)


def nearest(x: Any, values: Any) -> Any:
    """Index of the nearest of the sorted ``values`` for every element of ``x`` (uint8)."""
    import torch

    mids = ((values[1:] + values[:-1]) / 2).to(x.device, x.dtype)
    return torch.bucketize(x, mids).to(torch.uint8)


@dataclass(frozen=True)
class Blockwise8:
    """A vector stored as 8-bit codes of the dynamic map, one float scale per ``ABSMAX_BLOCK`` values, and an offset."""

    codes: Any  # uint8 [n]
    scales: Any  # float32 [ceil(n / 256)]
    offset: float

    def dequantize(self) -> Any:
        import torch

        n = self.codes.numel()
        values = dynamic_map().to(self.codes.device)[self.codes.long()]
        scale = self.scales.repeat_interleave(ABSMAX_BLOCK)[:n]
        return (values * scale + self.offset).to(torch.float32)


def quantize8(x: Any, centre: bool = True) -> Blockwise8:
    """bitsandbytes' blockwise 8-bit quantization; ``centre`` subtracts the mean first (double quantization)."""
    import torch.nn.functional as F

    x = x.float().flatten()
    offset = float(x.mean()) if centre else 0.0
    y = x - offset
    pad = (-y.numel()) % ABSMAX_BLOCK
    blocks = F.pad(y, (0, pad)).view(-1, ABSMAX_BLOCK)
    scales = blocks.abs().amax(1).clamp_min(1e-12)
    codes = nearest((blocks / scales[:, None]).flatten()[: y.numel()], dynamic_map())
    return Blockwise8(codes, scales, offset)


@dataclass(frozen=True)
class NF4Tensor:
    """A weight in NF4: one 4-bit code per value, one scale per block (plain or double-quantized)."""

    codes: Any  # uint8 [n_blocks, blocksize], values 0..15
    absmax: Any  # float32 [n_blocks] as dequantized (what the codes are multiplied by)
    shape: tuple[int, ...]
    double_quant: bool

    @property
    def blocksize(self) -> int:
        return int(self.codes.shape[1])

    def dequantize(self, dtype: Any = None) -> Any:
        n = math.prod(self.shape)
        w = codebook().to(self.codes.device)[self.codes.long()] * self.absmax[:, None]
        w = w.flatten()[:n].view(self.shape)
        return w if dtype is None else w.to(dtype)

    @property
    def bits_per_weight(self) -> float:
        return bits_per_weight(self.blocksize, self.double_quant)


def bits_per_weight(blocksize: int, double_quant: bool, offsets: bool = False) -> float:
    """Codes plus one scale per block: 4 + 32/64 plain, 4 + 8/64 + 32/(64*256) with double quantization;
    IR-QLoRA's offsets add another 8-bit code per block and a float per 256 blocks."""
    scale_bits = 8 + 32 / ABSMAX_BLOCK if double_quant else 32
    extra = 8 + 32 / ABSMAX_BLOCK if offsets else 0
    return 4 + (scale_bits + extra) / blocksize


def blocks(w: Any, blocksize: int) -> Any:
    """``w`` flattened row-major into ``[n_blocks, blocksize]``, the last block zero-padded."""
    import torch.nn.functional as F

    flat = w.float().flatten()
    return F.pad(flat, (0, (-flat.numel()) % blocksize)).view(-1, blocksize)


def quantize(w: Any, blocksize: int = 64, double_quant: bool = True) -> NF4Tensor:
    """NF4 codes of ``w`` with per-block absmax scaling, as ``bitsandbytes.functional.quantize_4bit``."""
    b = blocks(w, blocksize)
    absmax = b.abs().amax(1)
    codes = nearest(b / absmax.clamp_min(1e-12)[:, None], codebook())
    if double_quant:
        absmax = quantize8(absmax).dequantize()
    return NF4Tensor(codes, absmax, tuple(w.shape), double_quant)


def codes_only(b: Any) -> Any:
    """NF4 codes of already-blocked values ``[..., blocksize]`` (scales from each block's absmax)."""
    return nearest(b / b.abs().amax(-1, keepdim=True).clamp_min(1e-12), codebook())


def block_entropy(codes: Any) -> Any:
    """Shannon entropy in bits of the 16-code histogram of each block (last dim); at most 4."""
    import torch

    counts = torch.zeros(*codes.shape[:-1], 16, device=codes.device)
    counts.scatter_add_(-1, codes.long(), torch.ones_like(codes, dtype=counts.dtype))
    p = counts / codes.shape[-1]
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)


def expected_mse(blocksize: int = 64, points: int = 20001) -> float:
    """Expected squared error of NF4 round-tripping i.i.d. N(0, 1) weights, from the codebook alone.

    The block's absmax m is the largest of ``blocksize`` half-normals (density B * 2phi(m) *
    (2Phi(m) - 1)^(B-1)) and is reproduced exactly; each other value is N(0, 1) conditioned on |w| < m,
    rounded to m times the nearest code. Integrated numerically on a grid, in float64."""
    import torch

    code = codebook().double()

    def phi(t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-t * t / 2) / math.sqrt(2 * math.pi)

    def big_phi(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1 + torch.erf(t / math.sqrt(2)))

    m = torch.linspace(1e-3, 7.0, 1400, dtype=torch.float64)
    density = blocksize * 2 * phi(m) * (2 * big_phi(m) - 1) ** (blocksize - 1)
    u = torch.linspace(-1, 1, points, dtype=torch.float64)  # w = m * u
    q = code[nearest(u, code).long()]
    inner = []
    for mi in m:
        w = mi * u
        err = (w - mi * q) ** 2 * phi(w)
        inner.append(torch.trapezoid(err, w) / (2 * big_phi(mi) - 1))
    per_m = torch.stack(inner)
    return float((blocksize - 1) / blocksize * torch.trapezoid(per_m * density, m))
