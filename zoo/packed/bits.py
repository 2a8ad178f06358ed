"""Tight integer packing: bit-planes for codes, Rice-coded gaps for sparse masks (torch, any device).

A tensor of ``c``-bit codes (n of them, in row-major order) is stored as ``c`` bit-planes, a uint8 tensor
[c, ceil(n / 8)]: plane j holds bit j of every code, code i in byte i // 8 at bit i % 8 (least significant bit
first, numpy's ``bitorder="little"``). Any width packs without waste and decodes with shifts alone.

A sparse mask (PB-LLM's salient weights) is stored as the gaps between its set positions, Rice-coded with
parameter k: gap - 1 = q * 2^k + r, q in unary (q ones then a zero) in one bit stream and r as k bit-planes
in another, so both decode without a sequential loop.
"""

from __future__ import annotations

from typing import Any


def pack(codes: Any, bits: int) -> Any:
    """``codes`` (integers in [0, 2^bits)) as [bits, ceil(n / 8)] uint8 bit-planes."""
    import torch

    flat = codes.reshape(-1).to(torch.int64)
    n = flat.numel()
    pad = (-n) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    shifts = torch.arange(8, device=flat.device)
    planes = [(((flat >> j) & 1).view(-1, 8) << shifts).sum(1).to(torch.uint8) for j in range(bits)]
    if not planes:
        return torch.zeros(0, (n + pad) // 8, dtype=torch.uint8, device=flat.device)
    return torch.stack(planes)


def unpack(planes: Any, n: int) -> Any:
    """The ``n`` codes (int64) of ``pack``'s bit-planes."""
    import torch

    width = planes.shape[0]
    if width == 0:
        return torch.zeros(n, dtype=torch.int64, device=planes.device)
    # in the narrowest integer that holds a code (a byte for the codes, whose widths are 1-8): the decode of a
    # packed Linear runs in every forward, and int64 throughout was most of its time
    acc = torch.uint8 if width <= 8 else torch.int32
    shifts = torch.arange(8, dtype=torch.uint8, device=planes.device)
    bits = ((planes.unsqueeze(-1) >> shifts) & 1).reshape(width, -1)[:, :n]
    out = bits[0].to(acc)
    for j in range(1, width):
        out |= bits[j].to(acc) << j
    return out.to(torch.int64)


def rice_encode(mask: Any) -> tuple[Any, Any, dict[str, int]]:
    """A boolean mask (any shape, row-major) as (unary stream, remainder planes, {k, count, unary_bits})."""
    import torch

    pos = mask.reshape(-1).nonzero().squeeze(1).to(torch.int64)
    count = pos.numel()
    gaps = torch.diff(pos, prepend=pos.new_tensor([-1])) - 1 if count else pos
    sizes = [int((gaps >> k).sum()) + count * (1 + k) for k in range(17)]
    k = sizes.index(min(sizes))
    q, r = gaps >> k, gaps & ((1 << k) - 1)
    length = int(q.sum()) + count
    stream = torch.ones(length, dtype=torch.int64, device=mask.device)
    if count:
        stream[torch.cumsum(q + 1, 0) - 1] = 0
    return pack(stream, 1), pack(r, k), {"k": k, "count": count, "unary_bits": length}


def rice_decode(unary: Any, rem: Any, meta: dict[str, int], n: int) -> Any:
    """The boolean mask of ``n`` positions that ``rice_encode`` coded."""
    import torch

    mask = torch.zeros(n, dtype=torch.bool, device=unary.device)
    count = int(meta["count"])
    if not count:
        return mask
    stream = unpack(unary, int(meta["unary_bits"]))
    zeros = (stream == 0).nonzero().squeeze(1)
    q = torch.diff(zeros, prepend=zeros.new_tensor([-1])) - 1
    gaps = (q << int(meta["k"])) | unpack(rem, count)
    mask[torch.cumsum(gaps + 1, 0) - 1] = True
    return mask
