"""IR-QLoRA's Information Calibration Quantization (Qin et al. 2024, arXiv 2402.05445, section 3.1).

Plain NF4 centres every block on zero. ICQ shifts each block by an offset tau before quantizing,
``w ~ tau + absmax(w - tau) * NF4(...)``, choosing tau per block to maximise the entropy of the
block's 4-bit codes, so the 16 levels carry as much information about the weights as they can. As in
the authors' code (htqin/IR-QLoRA), the candidates are ``tau0 + f * absmax(w - tau0)`` with tau0 the
block median and ``f`` on an even grid of ``2 * steps + 1`` points in ``[-range * s, range * s]``, s being
NF4's scale constant 1/Phi^-1(0.9677083) (the grid bit for bit theirs); the first best candidate wins.
The offsets are stored like the scales: 8-bit codes of the dynamic map with one float per 256 blocks.

One difference from the authors' code, on purpose: the weights are quantized around the *stored*
(8-bit) offsets, so the codes are exactly those a loader reproduces from the saved offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo.lora import nf4


@dataclass(frozen=True)
class Calibrated:
    """One weight under ICQ: the NF4 tensor of ``w - tau`` and the stored per-block offsets."""

    quantized: nf4.NF4Tensor
    tau: nf4.Blockwise8

    def dequantize(self, dtype: Any = None) -> Any:
        q = self.quantized
        flat = q.dequantize().flatten()
        w = (flat + _per_value(self.tau.dequantize().to(flat.device), q.blocksize, flat.numel())).view(q.shape)
        return w if dtype is None else w.to(dtype)

    @property
    def bits_per_weight(self) -> float:
        q = self.quantized
        return nf4.bits_per_weight(q.blocksize, q.double_quant, offsets=True)


def _per_value(tau: Any, blocksize: int, n: int) -> Any:
    return tau.repeat_interleave(blocksize)[:n]


def scale_constant() -> float:
    """1/Phi^-1(0.9677083), with the offset rounded to float32 first as the authors' code does
    (``norm.ppf(torch.linspace(0.9677083, 0.5, 9))``): their candidate grid to the last bit."""
    import torch
    from torch.special import ndtri

    return float(1 / ndtri(torch.tensor(nf4.NF4_OFFSET, dtype=torch.float32).double()))


def search_tau(w: Any, blocksize: int, tau_range: float, steps: int, chunk: int = 1 << 16) -> Any:
    """The entropy-maximising offset of every block of ``w`` (float32 ``[n_blocks]``).

    Blocks are scored ``chunk`` at a time against every candidate at once, so memory stays at
    ``chunk * blocksize * (2 * steps + 1)`` codes whatever the size of the weight."""
    import torch

    b = nf4.blocks(w, blocksize)
    s = scale_constant()
    # spaced in float64 then rounded, as the authors' np.linspace: a float32 grid moves some candidates by an ulp
    grid = torch.linspace(-tau_range * s, tau_range * s, 2 * steps + 1, dtype=torch.float64)
    factors = grid.to(device=b.device, dtype=torch.float32)
    out = torch.empty(b.shape[0], device=b.device)
    per = max(1, chunk // len(factors))
    for i in range(0, b.shape[0], per):
        x = b[i : i + per]
        tau0 = x.median(dim=1, keepdim=True).values
        spread = (x - tau0).abs().amax(1, keepdim=True)
        tau = tau0[:, None, :] + factors[None, :, None] * spread[:, None, :]  # [blocks, candidates, 1]
        entropy = nf4.block_entropy(nf4.codes_only(x[:, None, :] - tau))  # [blocks, candidates]
        best = entropy.argmax(dim=1)  # first maximum, as the reference's strict ">" update
        out[i : i + per] = tau.squeeze(-1).gather(1, best[:, None]).squeeze(1)
    return out


def offsets(w: Any, blocksize: int, tau_range: float, steps: int) -> nf4.Blockwise8:
    """The offsets as stored (8-bit codes): the weights are quantized around these, not the exact ones."""
    return nf4.quantize8(search_tau(w, blocksize, tau_range, steps), centre=False)


def quantize(w: Any, blocksize: int, double_quant: bool, tau_range: float, steps: int) -> Calibrated:
    """ICQ of ``w``: search the offsets, store them in 8 bits, quantize around the stored values."""
    return around(w, offsets(w, blocksize, tau_range, steps), blocksize, double_quant)


def around(w: Any, tau: nf4.Blockwise8, blocksize: int, double_quant: bool) -> Calibrated:
    """NF4 of ``w`` shifted by given stored offsets (the torch backend's base, and a loader's with ``icq.safetensors``)."""
    flat = w.float().flatten()
    shifted = flat - _per_value(tau.dequantize().to(flat.device), blocksize, flat.numel())
    return Calibrated(nf4.quantize(shifted.view(w.shape), blocksize, double_quant), tau)
