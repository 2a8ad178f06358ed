"""One Linear's codes: encode a method's layout and its result, decode the 16-bit weight bit-identically.

A method describes its result (``Quantized.layout``) as *banks*: sets of weights that decode alike, each chosen
by ``select`` (``("all",)``, ``("column", id)``: columns whose ``colbank`` is ``id``, ``("mask", flag)``: where
the element ``mask`` is ``flag``) and decoded per row and block of ``group`` columns by its ``rule``:

- ``table``: the block row's 2^bits values, stored in the checkpoint's 16-bit dtype, the code an index
  (``signed``: 2^(bits-1) magnitudes, the code's top bit the sign). Binarizations (BiLLM, PB-LLM, DB-LLM,
  SliM-LLM's 1-bit groups) decode to a handful of values per block row, so the table *is* their
  statistics (mu +- alpha ...) as the fake checkpoint rounded them, which is what makes restoration exact.
- ``grid``: (code - zero) * scale in fp32, then rounded to 16 bits, as the methods compute it (fp32 scale,
  uint8 zero per block row).
- ``quip``: (code / top * 2 - 1) * scale, one fp32 scale per matrix (QuIP's symmetric grid).
- ``dual``: DB-LLM's four levels c, c + a2, c + a1, c + a1 + a2 per block row, of which two pairs share a sum:
  sorted, the lowest three are stored (16-bit, as rounded) and the highest is the 16-bit rounding of
  v1 + v2 - v0 (fp32) moved by a 2-bit correction of -1 .. +2 steps of the 16-bit grid (``<bank>_steps``;
  a block row beyond that reach keeps its fourth level in ``<bank>_fix_index`` / ``_fix_value``): 50 bits a
  block row where a table of four takes 64 and the method counts 48 (a1, a2, c in 16 bits).

``post`` undoes QuIP's incoherence processing (``rotate``): its rotations are regenerated from the stored seed.
Whatever the rules do not reproduce bit for bit (a torch.sign of 0, another machine's matmul) is stored as exceptions: flat
index and 16-bit value; encoding checks the decode against the fake weight, so the result is exact by
construction and the exception count is recorded.
"""

from __future__ import annotations

from typing import Any

from zoo.packed import bits as packbits
from zoo.packed import rotate

Tensors = dict[str, Any]


def _selection(bank: dict[str, Any], rows: int, cols: int, colbank: Any, mask: Any, device: Any) -> Any:
    import torch

    kind = bank["select"][0]
    if kind == "all":
        return torch.ones(rows, cols, dtype=torch.bool, device=device)
    if kind == "column":
        return (colbank.to(device) == int(bank["select"][1])).unsqueeze(0).expand(rows, cols)
    return mask.view(rows, cols) == bool(bank["select"][1])


def _blocks(sel: Any, group: int, cols: int) -> tuple[Any, int]:
    """Per column, the index of its block among the blocks that hold any of the bank's weights, and their count."""
    import torch

    nblocks = (cols + group - 1) // group
    block = torch.arange(cols, device=sel.device) // group
    present = torch.zeros(nblocks, dtype=torch.bool, device=sel.device)
    present[block[sel.any(0)]] = True
    local = torch.cumsum(present.to(torch.int64), 0) - 1
    return local[block], int(present.sum())


def _u16(x: Any) -> Any:
    import torch

    return x.contiguous().view(torch.int16).to(torch.int64) & 0xFFFF


def _from_u16(x: Any, dtype: Any) -> Any:
    import torch

    return torch.where(x >= 32768, x - 65536, x).to(torch.int16).view(dtype)


def _table_encode(values: Any, rb: Any, nrb: int, bits: int, signed: bool, dtype: Any) -> tuple[Any, Any]:
    """Codes and the [nrb, cap] table of the distinct 16-bit values of each block row (overflow: code 0)."""
    import torch

    raw = _u16(values)
    key, sign = (raw & 0x7FFF, raw >> 15) if signed else (raw, torch.zeros_like(raw))
    cap = 1 << (bits - 1 if signed else bits)
    uniq, inverse = torch.unique(rb * 65536 + key, return_inverse=True)
    group = uniq // 65536
    rank_u = torch.arange(uniq.numel(), device=uniq.device) - torch.searchsorted(uniq, group * 65536)
    ok = rank_u < cap
    table = torch.zeros(nrb, cap, dtype=torch.int64, device=values.device)
    table[group[ok], rank_u[ok]] = uniq[ok] % 65536
    rank = rank_u[inverse]
    codes = torch.where(rank < cap, rank, 0) | (sign << (bits - 1) if signed else 0)
    return codes, _from_u16(table, dtype)


def _ordered(raw: Any) -> Any:
    """16-bit float patterns (int64 in [0, 65536)) as integers in the order of their values (-0 just below +0)."""
    import torch

    return torch.where(raw >= 32768, 65535 - raw, raw + 32768)


def _from_ordered(key: Any) -> Any:
    import torch

    key = key.clamp(0, 65535)
    return torch.where(key >= 32768, key - 32768, 65535 - key)


DUAL_STEPS = (-1, 2)  # the fourth level's correction, in steps of the 16-bit grid: 2 bits (measured: ~0.1% fall outside)


def _dual_fourth(base: Any, steps: Any, dtype: Any) -> Any:
    """The fourth level (u16 patterns) from the lowest three ``base`` [nrb, 3] (u16) and each block row's step."""
    v = _from_u16(base, dtype).float()
    derived = _u16((v[:, 1] + v[:, 2] - v[:, 0]).to(dtype))
    return _from_ordered(_ordered(derived) + steps)


def _dual_encode(values: Any, rb: Any, nrb: int, dtype: Any) -> tuple[Any, Any, Any, Tensors]:
    """Codes (rank by value in the block row; overflow: 0), the [nrb, 3] 16-bit lowest levels, the 2-bit
    correction planes of the fourth (rows with fewer than four levels: 0 steps), and the block rows whose
    fourth level lies beyond the correction's reach with that level (``fix_index`` int32, ``fix_value``)."""
    import torch

    key = _ordered(_u16(values))
    uniq, inverse = torch.unique(rb * 65536 + key, return_inverse=True)
    group = uniq // 65536
    rank_u = torch.arange(uniq.numel(), device=uniq.device) - torch.searchsorted(uniq, group * 65536)
    levels = torch.full((nrb, 4), 32768, dtype=torch.int64, device=values.device)  # +0 where a row has fewer
    ok = rank_u < 4
    levels[group[ok], rank_u[ok]] = uniq[ok] % 65536
    raw = _from_ordered(levels)
    counts = torch.bincount(group, minlength=nrb)
    base = raw[:, :3].contiguous()
    predicted = _dual_fourth(base, torch.zeros(nrb, dtype=torch.int64, device=values.device), dtype)
    steps = torch.where(counts >= 4, levels[:, 3] - _ordered(predicted), 0)
    fix = ((steps < DUAL_STEPS[0]) | (steps > DUAL_STEPS[1])).nonzero().squeeze(1)
    extra = {"fix_index": fix.to(torch.int32), "fix_value": _from_u16(raw[fix, 3], dtype)} if fix.numel() else {}
    rank = rank_u[inverse]
    codes = torch.where(rank < 4, rank, 0)
    return codes, _from_u16(base, dtype), packbits.pack(steps.clamp(*DUAL_STEPS) - DUAL_STEPS[0], 2), extra


def _bank_values(bank: dict[str, Any], t: Tensors, p: str, codes: Any, rb: Any, dtype: Any) -> Any:
    """The fp32 values of one bank's codes (table values are exact in fp32)."""
    import torch

    from zoo.errors import VerifyError

    rule, b = bank["rule"], int(bank["bits"])
    if rule == "dual":
        base = _u16(t[f"{p}_table"]).view(-1, 3)
        steps = packbits.unpack(t[f"{p}_steps"], base.shape[0]) + DUAL_STEPS[0]
        table = torch.cat([base, _dual_fourth(base, steps, dtype).unsqueeze(1)], 1)
        if f"{p}_fix_index" in t:
            table[t[f"{p}_fix_index"].to(torch.int64), 3] = _u16(t[f"{p}_fix_value"])
        return _from_u16(table[rb, codes], dtype).float()
    if rule not in ("table", "grid", "quip"):
        raise VerifyError(f"a packed Linear's bank has rule {str(rule)[:20]!r}, which this zoo does not know; fix: upgrade zoo")
    if rule == "table":
        cap = 1 << (b - 1 if bank.get("signed") else b)
        table = _u16(t[f"{p}_table"]).view(-1, cap)
        raw = table[rb, codes & (cap - 1)]
        if bank.get("signed"):
            raw = raw | ((codes >> (b - 1)) << 15)
        return _from_u16(raw, dtype).float()
    if rule == "grid":
        scale, zero = t[f"{p}_scale"].reshape(-1), t[f"{p}_zero"].reshape(-1)
        return (codes.float() - zero[rb].float()) * scale[rb]
    top = (1 << b) - 1
    return (codes.float() / top * 2 - 1) * t[f"{p}_scale"].reshape(())


MAX_SIDE = 1 << 20  # rows or columns of one Linear: LLaMA-3-70B's widest is 28672
MAX_WEIGHTS_PER_BYTE = 64  # the sparsest packing stores 1 bit a weight (8 a byte); 64 leaves room for any layout
DTYPES = ("float16", "bfloat16", "float32")


def bounded(spec: dict[str, Any], t: Tensors) -> tuple[int, int]:
    """The Linear's (rows, cols), refused when the config asks for more weights than its stored tensors can
    hold: a packed folder from outside (an unsigned pull decodes before its hash can be checked) must not
    make zoo allocate terabytes from a few bytes of config."""
    from zoo.errors import VerifyError

    shape = spec.get("shape")
    stored = sum(int(v.numel()) * int(v.element_size()) for v in t.values())
    ok = (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_SIDE for n in shape)
        and spec.get("dtype") in DTYPES
    )
    if not ok or not isinstance(shape, list) or shape[0] * shape[1] > MAX_WEIGHTS_PER_BYTE * max(stored, 1):
        raise VerifyError(
            f"a packed Linear's spec (shape {str(shape)[:60]}, dtype {str(spec.get('dtype'))[:20]!r}) does not fit its "
            f"{stored} stored bytes; nothing was written; fix: do not use this checkpoint"
        )
    return int(shape[0]), int(shape[1])


def decode(spec: dict[str, Any], t: Tensors, device: Any = "cpu") -> Any:
    """The 16-bit weight [rows, cols] from a Linear's ``spec`` and tensors ``t`` (names without its prefix)."""
    import torch

    rows, cols = bounded(spec, t)
    dtype = getattr(torch, spec["dtype"])
    t = {k: _float(k, v.to(device), dtype) for k, v in t.items()}
    colbank = packbits.unpack(t["colbank"], cols) if "colbank" in t else None
    mask = None
    if "mask" in spec:
        mask = packbits.rice_decode(t["mask_unary"], t["mask_rem"], spec["mask"], rows * cols)
    w = torch.zeros(rows, cols, dtype=torch.float32, device=device)
    for bank in spec["banks"]:
        if bank["select"][0] != "mask":  # whole columns: [rows, its columns], no per-weight index to build
            keep = _selection(bank, 1, cols, colbank, None, device)[0]
            local, present = _blocks(keep.unsqueeze(0), int(bank["group"]), cols)
            c = keep.nonzero().squeeze(1)
            codes = packbits.unpack(t[f"{bank['name']}_codes"], rows * c.numel()).view(rows, -1)
            rb = torch.arange(rows, device=device).unsqueeze(1) * present + local[c].unsqueeze(0)
            values = _bank_values(bank, t, bank["name"], codes, rb, dtype)
            if c.numel() == cols and len(spec["banks"]) == 1:
                w = values
            else:
                w[:, c] = values
            continue
        sel = _selection(bank, rows, cols, colbank, mask, device)
        local, present = _blocks(sel, int(bank["group"]), cols)
        r, c = sel.nonzero(as_tuple=True)
        codes = packbits.unpack(t[f"{bank['name']}_codes"], r.numel())
        w[r, c] = _bank_values(bank, t, bank["name"], codes, r * present + local[c], dtype)
    post = spec.get("post")
    if post is not None:
        w = rotate.unrotate(post, w, t.get("s"))
    out = w.to(dtype)
    if spec.get("exceptions"):
        out.view(-1)[t["exc_index"].to(torch.int64)] = t["exc_value"]
    return out


def encode(layout: dict[str, Any], w16: Any, q32: Any = None) -> tuple[dict[str, Any], Tensors]:
    """(spec, tensors on the host) of one Linear: ``layout`` from its method, ``w16`` the fake weight as saved,
    ``q32`` the fp32 values grid codes are read from (the method's result, or QuIP's before its rotations)."""
    import torch

    rows, cols = w16.shape
    dev = w16.device
    dtype = w16.dtype
    spec: dict[str, Any] = {"shape": [rows, cols], "dtype": str(dtype).removeprefix("torch."), "banks": []}
    t: Tensors = {}
    colbank = layout.get("colbank")
    if colbank is not None:  # a bank id per column, as bit-planes of the fewest bits that hold the largest
        colbank = colbank.to(torch.int64).to(dev)
        t["colbank"] = packbits.pack(colbank, max(1, int(colbank.max()).bit_length()))
    mask = None
    if layout.get("mask") is not None:
        mask = layout["mask"].to(dev).reshape(-1)
        t["mask_unary"], t["mask_rem"], spec["mask"] = packbits.rice_encode(mask)
    q = layout.get("q", q32)
    for bank in layout["banks"]:
        name, rule, b, group = bank["name"], bank["rule"], int(bank["bits"]), int(bank["group"])
        sel = _selection(bank, rows, cols, colbank, mask, dev)
        local, present = _blocks(sel, group, cols)
        r, c = sel.nonzero(as_tuple=True)
        rb = r * present + local[c]
        entry = {k: bank[k] for k in ("name", "rule", "bits", "group", "select")}
        if rule == "table":
            entry["signed"] = bool(bank.get("signed", False))
            codes, t[f"{name}_table"] = _table_encode(w16[r, c], rb, rows * present, b, entry["signed"], dtype)
        elif rule == "dual":
            codes, t[f"{name}_table"], t[f"{name}_steps"], extra = _dual_encode(w16[r, c], rb, rows * present, dtype)
            t.update({f"{name}_{k}": v for k, v in extra.items()})
        elif rule == "grid":
            scale, zero = (bank[k].to(dev).reshape(rows, -1) for k in ("scale", "zero"))
            if scale.shape[1] != present:  # given for every block: keep the bank's own
                keep = torch.unique(torch.arange(cols, device=dev)[sel.any(0)] // group)
                scale, zero = scale[:, keep], zero[:, keep]
            t[f"{name}_scale"], t[f"{name}_zero"] = scale.float().contiguous(), zero.to(torch.uint8).contiguous()
            zf = t[f"{name}_zero"].reshape(-1).float()
            codes = (torch.round(q.to(dev)[r, c].float() / t[f"{name}_scale"].reshape(-1)[rb]) + zf[rb]).clamp(0, (1 << b) - 1)
            codes = codes.to(torch.int64)
        else:
            t[f"{name}_scale"] = bank["scale"].float().reshape(1).to(dev)
            codes = bank["codes"].to(dev)[r, c].round().to(torch.int64)
        t[f"{name}_codes"] = packbits.pack(codes, b)
        spec["banks"].append(entry)
    if layout.get("post") is not None:
        spec["post"] = {**layout["post"], "form": "structured"}
        if "s" in layout:
            t["s"] = layout["s"].float().to(dev)
    decoded = decode(spec, t, dev)
    wrong = (_u16(decoded) != _u16(w16)).reshape(-1).nonzero().squeeze(1)
    spec["exceptions"] = int(wrong.numel())
    if wrong.numel():
        t["exc_index"] = wrong.to(torch.int32)
        t["exc_value"] = w16.reshape(-1)[wrong].contiguous()
    return spec, {k: _integer(v.detach().cpu().contiguous()) for k, v in t.items()}


def _integer(v: Any) -> Any:
    """Floating tensors stored by their bits (int16 / int32): no loader's dtype cast can round a table or scale."""
    import torch

    if v.is_floating_point():
        return v.view(torch.int16 if v.element_size() == 2 else torch.int32)
    return v


def _float(name: str, v: Any, dtype: Any) -> Any:
    import torch

    if name.endswith(("_table", "exc_value", "_fix_value")):
        return v.view(dtype)
    if name.endswith("_scale") or name == "s":
        return v.view(torch.float32)
    return v
