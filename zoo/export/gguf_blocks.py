"""GGUF blocks: each quantized Linear in the smallest legacy block type that holds it exactly.

GGUF's legacy types share one block of 32 weights and one fp16 ``d`` per block (ggml's
``block_q4_0`` and friends, as the ``gguf`` package's ``quants.py`` reads them):

- ``Q4_0``: ``w = d * (q - 8)``, q in 0..15      - ``Q5_0``: ``w = d * (q - 16)``, q in 0..31
- ``Q4_1``: ``w = d * q + m``, q in 0..15, fp16 m - ``Q8_0``: ``w = d * q``, q in -128..127

A zoo group of 128 (or a whole row, per channel) is several 32-blocks with the same ``d``: the scale,
which must be an fp16 value exactly (bf16 scales are, unless tiny). A symmetric build is ``Q4_0``. An
asymmetric one is ``w = s * (code - zero)``: as ``Q4_1`` it needs ``m = -s * zero`` in fp16, which a bf16
scale times a 4-bit zero often is not (12 significant bits against fp16's 11), so the next candidate
stores the same value as ``code - zero`` with a wider offset (``Q5_0``; 2- and 3-bit builds fit ``Q4_0``).
The integers change representation, never value: every block decodes to zoo's own weight, bit for bit,
which ``prove`` checks on the written file with the ``gguf`` package's own reader. K-quants (``Q2_K``,
``Q3_K``...) are not candidates: their per-16 sub-scales are small integers times one fp16 per 256 weights,
which zoo's free fp16 scale per group is not. A tensor no candidate holds is refused with the reason.

llama.cpp's LLaMA graph rotates query and key pairs as adjacent elements where Hugging Face's layout
rotates halves, so its converter reorders the rows of q_proj and k_proj; ``rope_rows`` does the same to
codes, scales and zeros (a row permutation moves whole groups, so exactness is untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.export.source import QLinear, Source, decode, exact_in, same_bits

BLOCK = 32
EXT = ".gguf"


@dataclass(frozen=True)
class Candidate:
    name: str  # GGMLQuantizationType member
    lo: int  # the range of code - zero an offset type holds (unused by min types)
    hi: int
    min_type: bool = False  # w = d*q + m with the unsigned code itself and m = -d*zero

    def misfit(self, q: QLinear, e: np.ndarray) -> str | None:
        """Why ``q`` does not fit this type exactly; None when every block does."""
        if not exact_in(q.scales, np.float16).all():
            return f"a scale ({_first(q.scales, exact_in(q.scales, np.float16))}) is not an fp16 value"
        if self.min_type:
            if q.bits > 4:
                return f"its {q.bits}-bit codes exceed 4 bits"
            m = -q.scales.astype(np.float64) * q.zeros
            ok = exact_in(m, np.float16)
            return None if ok.all() else f"m = -scale*zero ({_first(m, ok)}) is not an fp16 value in {int((~ok).sum())} groups"
        if e.min() < self.lo or e.max() > self.hi:
            return f"code - zero spans {int(e.min())}..{int(e.max())}, beyond {self.lo}..{self.hi}"
        return None


def _first(values: np.ndarray, ok: np.ndarray) -> str:
    return f"{float(np.asarray(values)[~ok].flat[0]):.9g}"


# Smallest first (bits per weight with the fp16 block header: 4.5, 5.0, 5.5, 8.5).
CANDIDATES = (
    Candidate("Q4_0", -8, 7),
    Candidate("Q4_1", 0, 15, min_type=True),
    Candidate("Q5_0", -16, 15),
    Candidate("Q8_0", -128, 127),
)


def choose(q: QLinear) -> tuple[str | None, str]:
    """The first candidate that holds ``q`` exactly, or None and every candidate's reason."""
    rows, cols = q.shape
    if q.group % BLOCK or cols % BLOCK:
        return None, f"its groups of {q.group} are not whole blocks of {BLOCK}"
    e = q.codes.astype(np.int16) - np.repeat(q.zeros, q.group, axis=1)
    reasons = []
    for c in CANDIDATES:
        why = c.misfit(q, e)
        if why is None:
            return c.name, ""
        reasons.append(f"{c.name}: {why}")
    return None, "; ".join(reasons)


def rope_rows(rows: int, heads: int) -> np.ndarray:
    """The row order llama.cpp's LLaMA graph expects of q_proj / k_proj: per head, halves interleaved."""
    half = rows // heads // 2
    return np.arange(rows).reshape(heads, 2, half).swapaxes(1, 2).reshape(-1)


def permuted(q: QLinear, order: np.ndarray) -> QLinear:
    return QLinear(q.name, q.bits, q.group, q.codes[order], q.scales[order], q.zeros[order], q.scale_dtype)


def _nibbles(v: np.ndarray) -> np.ndarray:
    """ggml's 4-bit layout of a block: byte j holds element j (low nibble) and element j + 16 (high)."""
    return (v[:, :16] & 0x0F) | ((v[:, 16:] & 0x0F) << 4)


def encode(q: QLinear, qtype: str) -> np.ndarray:
    """The tensor's bytes, (rows, blocks * type size), in ggml's block layout for ``qtype``."""
    rows, cols = q.shape
    per_block = np.repeat(np.arange(cols // q.group), q.group // BLOCK)  # group of each 32-block
    d = q.scales[:, per_block].astype(np.float16).reshape(-1, 1).view(np.uint8)
    zeros = q.zeros[:, per_block].reshape(-1, 1)
    codes = q.codes.astype(np.int16).reshape(-1, BLOCK)
    if qtype == "Q4_1":
        m = (-q.scales[:, per_block].astype(np.float64) * q.zeros[:, per_block]).astype(np.float16)
        parts = [d, m.reshape(-1, 1).view(np.uint8), _nibbles(codes.astype(np.uint8))]
    elif qtype == "Q8_0":
        parts = [d, (codes - zeros).astype(np.int8).view(np.uint8)]
    else:
        v = (codes - zeros + (8 if qtype == "Q4_0" else 16)).astype(np.uint8)
        parts = [d]
        if qtype == "Q5_0":  # the fifth bit of each element, as one little-endian uint32 per block
            parts.append(np.packbits(v >> 4, axis=1, bitorder="little"))
        parts.append(_nibbles(v))
    return np.concatenate(parts, axis=1).reshape(rows, -1)


def plain_bytes(tensor: Any) -> tuple[np.ndarray, str]:
    """An unquantized tensor as GGUF stores it losslessly: 1-D (norms) in F32, matrices in BF16 when bf16."""
    import torch

    if tensor.dim() == 1 or tensor.dtype == torch.float32:
        return tensor.float().numpy(), "F32"
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(np.uint8).reshape(tensor.shape[0], -1), "BF16"
    if tensor.dtype == torch.float16:
        return tensor.numpy(), "F16"
    raise ValueError(f"a {tensor.dtype} tensor, which zoo does not export")


def prove(path: Path, expected: dict[str, Callable[[], np.ndarray]]) -> dict[str, Any]:
    """Read ``path`` back with the gguf package's reader and decoder; every tensor must equal zoo's bit for bit."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(path)
    found = {t.name: t for t in reader.tensors}
    if set(found) != set(expected):
        raise ValueError(f"the file holds tensors {sorted(set(found) ^ set(expected))[:3]} it should not (or lacks them)")
    for name, want in expected.items():
        t = found[name]
        got = dequantize(t.data, t.tensor_type)
        if not same_bits(got, want()):
            raise ValueError(f"{name} ({t.tensor_type.name}) does not decode to zoo's weights")
    return {"reader": f"gguf {_version('gguf')} GGUFReader + gguf.quants.dequantize", "tensors": len(expected), "equal": True}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def reference(q: QLinear) -> Callable[[], np.ndarray]:
    return lambda: decode(q)


def reference_plain(tensor: Any) -> Callable[[], np.ndarray]:
    return lambda: tensor.float().numpy()


def check_all(src: Source) -> dict[str, str]:
    """Each quantized tensor's type, or ValueError naming the first one no candidate holds and why."""
    types = {}
    for name, q in src.quantized.items():
        qtype, why = choose(q)
        if qtype is None:
            raise ValueError(f"{name} ({q.bits}-bit, groups of {q.group}) fits no GGUF block type exactly: {why}")
        types[name] = qtype
    return types
