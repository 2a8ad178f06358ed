"""QuIP's rotations undone at decode time: U^T Q V (authors: divided by the per-column rescaling s).

Version 2 (``post["form"] == "structured"``) applies the butterflies (authors) or Kronecker factors (zoo-obs)
regenerated from the seed to Q's rows and columns without forming U or V, in float64: rows x cols x (a + b)
multiplications instead of building two dense n x n matrices and two dense products (rows x cols x (rows +
cols)), and nothing n x n is held. float64 also makes the decode the same on any machine to well below the
16-bit rounding (an fp32 matmul's summation order, which differs between CPUs, GPUs and thread counts, moves
about 1 weight in 10^5 across a bf16 rounding boundary; float64's about 1 in 10^13), so a checkpoint packed on
a GPU unpacks to the same hash on a laptop. The build computed the fake weight with dense fp32 matrices: the
few weights where the two roundings differ are the Linear's stored exceptions, found when it was packed.
Version 1 folders (no ``form``) decode with the dense fp32 matrices they were packed against.
"""

from __future__ import annotations

from typing import Any


def _dense(post: dict[str, Any], rows: int, cols: int, device: Any) -> tuple[Any, Any]:
    import torch

    from zoo.methods import rotations as quip

    seed = int(post["seed"])
    if post["variant"] == "authors":
        gen = torch.Generator().manual_seed(seed)
        u = quip.butterfly(rows, gen)
        return u.to(device), quip.butterfly(cols, gen).to(device)
    return quip.rotation(rows, seed, device), quip.rotation(cols, seed + 1, device)


def unrotate(post: dict[str, Any], q: Any, s: Any) -> Any:
    """U^T q V (/ s for the authors' variant) for the values ``q`` [rows, cols] (fp32), on q's device."""
    import torch

    from zoo.methods import rotations as quip

    rows, cols = q.shape
    seed = int(post["seed"])
    authors = post["variant"] == "authors"
    if post.get("form") != "structured":  # version 1
        u, v = _dense(post, rows, cols, q.device)
        return (u.T @ q @ v) / s.unsqueeze(0) if authors else u.T @ q @ v
    x = q.to(torch.float64)
    if authors:
        gen = torch.Generator().manual_seed(seed)
        pu = quip.butterfly_parts(rows, gen)
        pv = quip.butterfly_parts(cols, gen)
        x = quip.butterfly_apply(pu, x, transpose=True)  # U^T Q
        x = quip.butterfly_apply(pv, x.T.contiguous(), transpose=True).T  # (V^T (U^T Q)^T)^T = U^T Q V
        return (x / s.to(torch.float64).unsqueeze(0)).contiguous()
    x = quip.kron_apply(quip.rotation_parts(rows, seed), x, transpose=True)
    return quip.kron_apply(quip.rotation_parts(cols, seed + 1), x.T.contiguous(), transpose=True).T.contiguous()
