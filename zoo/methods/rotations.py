"""QuIP's random orthogonal rotations, regenerated from a seed: the authors' butterflies (random permutations
around a block of Haar-random factors) and zoo-obs's Kronecker products of two Haar factors, each as a dense
matrix (what the build multiplies) and as its parts (what ``zoo.packed.rotate`` applies without forming the
n x n matrix). A leaf module: the method (``quip.py``) and the packed decoder both import it, and it imports
neither, so reading a packed checkpoint never reaches into the build's code.
"""

from __future__ import annotations

from typing import Any


def _factors(n: int) -> tuple[int, int]:
    """n = a * b with a <= b as close as possible (zoo-obs's Kronecker shape)."""
    a = int(n**0.5)
    while n % a:
        a -= 1
    return a, n // a


def _haar(n: int, gen: Any, count: int = 1) -> Any:
    """``count`` Haar-random orthogonal n x n matrices (QR of a Gaussian, signs fixed)."""
    import torch

    q, r = torch.linalg.qr(torch.randn(count, n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def rotation_parts(n: int, seed: int) -> tuple[Any, Any]:
    """zoo-obs's two Haar factors (float64), fixed by (n, seed)."""
    import torch

    a, b = _factors(n)
    fa, fb = (torch.Generator().manual_seed(s) for s in (seed * 7919 + n, seed * 104729 + n))
    return _haar(a, fa)[0], _haar(b, fb)[0]


def rotation(n: int, seed: int, device: Any = "cpu") -> Any:
    """zoo-obs's rotation: the Kronecker product of two Haar factors, fixed by (n, seed)."""
    import torch

    return torch.kron(*rotation_parts(n, seed)).float().to(device)


def kron_apply(parts: tuple[Any, Any], x: Any, transpose: bool = False) -> Any:
    """(A kron B) @ x (or its transpose @ x) for x [n, m] in x's dtype, without forming the n x n product."""
    import torch

    fa, fb = (t.to(x.device, x.dtype) for t in parts)
    if transpose:
        fa, fb = fa.T, fb.T
    n, m = x.shape
    return torch.einsum("ij,kl,jlm->ikm", fa, fb, x.reshape(fa.shape[0], fb.shape[0], m)).reshape(n, m)


def butterfly_factors(n: int) -> tuple[int, int]:
    """The authors' split of n in two: the products of its prime factors (ascending) at even and odd places."""
    primes, m, p = [], n, 2
    while m > 1:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    a = b = 1
    for i, q in enumerate(primes):
        a, b = (a * q, b) if i % 2 == 0 else (a, b * q)
    return a, b


def butterfly_parts(n: int, gen: Any) -> tuple[Any, Any, Any, Any]:
    """What ``butterfly`` is made of, drawn from ``gen`` in its order: the [b, a, a] and [a, b, b] Haar blocks
    (float64) and the two permutations."""
    import torch

    a, b = butterfly_factors(n)
    first, second = _haar(a, gen, b), _haar(b, gen, a)  # [b, a, a], [a, b, b]
    return first, second, torch.randperm(n, generator=gen), torch.randperm(n, generator=gen)


def butterfly_apply(parts: tuple[Any, Any, Any, Any], x: Any, transpose: bool = False) -> Any:
    """B @ x (or B^T @ x) for the butterfly B of ``parts`` and x [n, m], in x's dtype, without forming B:
    n * (a + b) multiplications a column where B @ x takes n^2."""
    import torch

    first, second, p_in, p_out = (t.to(x.device) for t in parts)
    first, second = first.to(x.dtype), second.to(x.dtype)
    b, a = first.shape[0], second.shape[0]
    n, m = x.shape
    if not transpose:
        y = torch.einsum("jkl,ljm->kjm", first, x[p_in].reshape(a, b, m))  # mixes i_a within each i_b
        return torch.einsum("kjl,klm->kjm", second, y).reshape(n, m)[p_out]  # mixes i_b within each i_a
    z = torch.empty_like(x)
    z[p_out] = x
    y = torch.einsum("kjl,kjm->klm", second, z.reshape(a, b, m))
    y = torch.einsum("jkl,kjm->ljm", first, y).reshape(n, m)
    out = torch.empty_like(y)
    out[p_in] = y
    return out


def butterfly(n: int, gen: Any) -> Any:
    """A random orthogonal n x n butterfly: permute, rotate each of the b groups of a by its own a x a
    Haar matrix, each of the a groups of b by its own b x b one, permute again (n = a * b)."""
    import torch

    first, second, p_in, p_out = butterfly_parts(n, gen)
    a, b = second.shape[0], first.shape[0]
    x = torch.eye(n, dtype=torch.float64)[p_in].reshape(a, b, n)  # row index = i_a * b + i_b
    x = torch.einsum("jkl,ljn->kjn", first, x)  # [a, b, n]: mixes i_a within each i_b
    x = torch.einsum("kjl,kln->kjn", second, x)  # mixes i_b within each i_a
    return x.reshape(n, n)[p_out].float()
