"""QuIP (Chee et al. 2023, arXiv 2307.13304): incoherence processing plus LDLQ adaptive rounding."""

from typing import Literal

from zoo.methods.base import MethodParams, MethodSpec


class QuIPParams(MethodParams):
    incoherence: Literal["kronecker", "hadamard"] = "kronecker"
    dampening_frac: float = 0.01
    seed: int = 0


SPEC = MethodSpec(
    name="quip",
    title="QuIP",
    paper="Chee et al. 2023, QuIP: 2-Bit Quantization of LLMs With Guarantees, arXiv 2307.13304",
    params=QuIPParams,
    weight_bits=(2, 3, 4),
    grouped=False,
    symmetric=False,
    formats=("fake",),
)
