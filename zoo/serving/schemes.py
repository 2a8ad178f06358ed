"""What a build is, as a serving runtime sees it, and how closely a runtime must agree with transformers.

The agreement check compares the mean log-probability a runtime gives the same held-out tokens with
transformers' (both in bf16), as a relative perplexity difference. Two correct runtimes still differ:
their kernels round and sum in another order, and the tolerance per scheme says by how much they may.
A runtime that loads a build but lands outside its tolerance is recorded as disagreeing, and no card
offers it.
"""

from __future__ import annotations

from zoo.recipe import Recipe

# scheme kind -> (relative perplexity tolerance, why)
TOLERANCE: dict[str, tuple[float, str]] = {
    "16-bit": (
        0.01,
        "the same bf16 weights in both runtimes: only the order of bf16 sums differs (vLLM's CPU build matched "
        "transformers to 0.35% in bf16 and exactly in fp32 on zoo's tiny builds)",
    ),
    "weight-only": (
        0.02,
        "integer weights dequantized inside each runtime's own kernel: the rounding of the bf16 dequantized weight "
        "and the summation order differ, which moves a tiny model's perplexity by well under 1% when the kernel is "
        "right; a wrong packing or scale moves it by far more than 2%",
    ),
    "w8a8": (
        0.05,
        "activations are quantized to int8 per token at run time by each runtime's own kernel: a value on a rounding "
        "boundary lands on another integer, so agreement is looser than weight-only; a wrong scale is far beyond 5%",
    ),
    "adapter": (
        0.02,
        "an NF4 base with a LoRA adapter: NF4 dequantization is exact, the adapter's bf16 matmuls add a second summation order",
    ),
}


def kind(recipe: Recipe) -> str:
    if recipe.format == "adapter":
        return "adapter"
    if recipe.format == "fake":  # zoo's 1-2 bit methods store the dequantized weights in 16-bit
        return "16-bit"
    return "w8a8" if recipe.activations else "weight-only"


def scheme(recipe: Recipe) -> str:
    """A short label the support table and the record use: ``W4A16 g128``, ``W8A8``, ``16-bit``, ..."""
    k = kind(recipe)
    if k == "16-bit":
        return "16-bit (dequantized)"
    if k == "adapter":
        return f"NF4 + LoRA (blocks of {recipe.weights.group_size})"
    w = recipe.weights
    group = "per channel" if w.group_size == "channel" else f"g{w.group_size}"
    acts = recipe.activations.bits if recipe.activations else 16
    return f"W{w.bits:g}A{acts} {group}"


def tolerance(recipe: Recipe) -> tuple[float, str]:
    return TOLERANCE[kind(recipe)]
