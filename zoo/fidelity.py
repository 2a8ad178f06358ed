"""How far each method's implementation is from its authors' algorithm, as measured, in words a card
and ``zoo show`` print. Kept free of imports so the light catalog commands read it too.

Measured on the tiny base with the authors' public code run side by side (same calibration windows,
layer-by-layer pipeline and perplexity function; only the per-Linear quantizer changed; held-out pydoc
perplexity, 16-bit base 56.25; issue #18). Empty: the method is its reference implementation (the
llm-compressor modifiers, GPTQ's OBS loop matching IST-DASLab/gptq's error exactly, NF4 as
bitsandbytes stores it). A method whose text is not empty must not be described as the paper's
algorithm; the card says which one built the checkpoint.
"""

from __future__ import annotations

FIDELITY: dict[str, str] = {
    "billm": (
        "zoo's variant of BiLLM, not the authors' algorithm: a fixed 10% of salient columns (the authors search "
        "1-49 of 128 per block), binarization without their per-row mean offset, the non-salient split on |w| "
        "rather than Hessian saliency, and error compensation within blocks (theirs: between blocks only). "
        "Measured on the tiny base: zoo 57.40 perplexity at 1.10 code bits vs the authors' code 65.57 at 1.13."
    ),
    "pbllm": (
        "zoo's variant of PB-LLM, not the authors' algorithm: the salient mask is re-chosen per block inside "
        "the OBS loop (the authors choose it once per group from the original weights), binarization without "
        "their mean offset, the 8-bit grid per block (theirs: the whole row). Measured on the tiny base: "
        "zoo 58.56 / 60.67 perplexity at 2 / 1.7 bits vs the authors' code 62.95 / 67.08."
    ),
    "quip": (
        "zoo's variant of QuIP: a per-row min-max grid (the authors: one symmetric scale per matrix, 2.4 x RMS, "
        "clipped), no greedy pass after LDLQ, Kronecker rotations without permutations, no diagonal rescaling. "
        "Measured on the tiny base at W2: zoo 57.95 perplexity vs the authors' code 57.45."
    ),
    "slimllm": (
        "zoo's variant of SliM-LLM: bit allocation by salience-weighted rounding error (the authors search by "
        "output KL on calibration activations) and no salience-weighted quantizer refinement (SQC); 1-bit groups "
        "are binarized around the row mean as the authors' are (params.one_bit_grid: mean-binary, the default; "
        "zoo's earlier min-max grid, one_bit_grid: minmax, measured better in zoo's pipeline on the tiny base: "
        "59.53 vs 61.38 pydoc perplexity). The authors' code could not run on this base's 256-wide layers, so "
        "no side-by-side figure exists."
    ),
    "irqlora": (
        "zoo's implementation of IR-QLoRA's ICQ (entropy-maximizing NF4 calibration) and IEC (the elastic "
        "connection) from the paper; not yet compared side by side with the authors' code."
    ),
    "dbllm": (
        "DB-LLM's flexible dual binarization only: the deviation-aware distillation (DAD) the study's number "
        "depends on is not implemented (DB-LLM has no public code to compare with)."
    ),
}


def fidelity(method: str) -> str:
    """What to say about ``method``'s faithfulness; empty when it is the reference implementation."""
    return FIDELITY.get(method, "")
