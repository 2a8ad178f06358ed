"""How far each method's implementation is from its authors' algorithm, as measured, in words a card
and ``zoo show`` print. Kept free of imports so the light catalog commands read it too.

Measured on the tiny base with the authors' public code run side by side (same calibration windows,
layer-by-layer pipeline and perplexity function; only the per-Linear quantizer changed; held-out pydoc
perplexity, 16-bit base 56.25; issue #18). Empty: the method is its reference implementation (the
llm-compressor modifiers, GPTQ's OBS loop matching IST-DASLab/gptq's error exactly, NF4 as
bitsandbytes stores it). A method with variants (``params.variant``) has a text per variant, the
default first: the authors' algorithm, with its parity evidence, and zoo's variants by name; the card
says which one built the checkpoint. A text that does not say "the authors' algorithm" must not be
read as the paper's.

The Hessian's scale: zoo's layer-by-layer pass holds H per token (``zoo.methods.native``); GPTQ's reference
code and the GPTQ-based authors' code average over sequences, a (tokens per window) times larger H. Only an
absolute constant added to H can tell them apart. GPTQ (llm-compressor, GPTQModel and IST-DASLab/gptq alike),
BiLLM, PB-LLM and DB-LLM damp by 1% of H's mean diagonal and rank salience by ratios, QuIP rescales H to trace n
before its 0.01 I: none has one, and each entry below says so in a clause. SliM-LLM's authors add an absolute
0.01, so zoo gives its authors' variant their per-sequence H.
"""

from __future__ import annotations

FIDELITY: dict[str, str | dict[str, str]] = {
    "billm": {
        "authors": (
            "the authors' algorithm (Aaronhuang-778/BiLLM at dc137eb, braq with Hessian saliency: salient "
            "columns searched per block, residual binarization with per-row mean offsets, the split searched "
            "over 81 saliency percentiles, error compensation between blocks only; H per token or per sequence gives "
            "the same result: relative dampening, salience by ratios); on zoo's parity fixtures "
            "its reconstruction error equals their code's (tests/test_parity.py)."
        ),
        "zoo-obs": (
            "zoo's variant of BiLLM (params.variant: zoo-obs), not the authors' algorithm: a fixed 10% of "
            "salient columns, binarization without the per-row mean offset, the non-salient split on |w| rather "
            "than Hessian saliency, and error compensation within blocks. Measured on the tiny base: 57.40 "
            "perplexity at 1.10 code bits vs the authors' code 65.57 at 1.13."
        ),
    },
    "pbllm": {
        "authors": (
            "the authors' algorithm (hahnyuan/PB-LLM gptq_pb at fe85da9: Hessian salience, XNOR binarizer with "
            "mean offset, one 8-bit grid per row, mask fixed per group before compensation; H per token or per "
            "sequence gives the same result: relative dampening, salience by ratios); on zoo's parity "
            "fixtures its reconstruction error equals their code's (tests/test_parity.py)."
        ),
        "zoo-obs": (
            "zoo's variant of PB-LLM (params.variant: zoo-obs), not the authors' algorithm: the salient mask "
            "re-chosen per block inside the OBS loop, binarization without the mean offset, the 8-bit grid per "
            "block. Measured on the tiny base (bench/methods.py): 58.67 pydoc perplexity at 2 bits vs the "
            "authors' algorithm 63.01 (their code: 62.95; at 1.7 bits 60.67 vs 67.08)."
        ),
    },
    "quip": {
        "authors": (
            "the authors' algorithm (Cornell-RelaxML/QuIP at ac92cfc, --quant ldlq --incoh_processing: diagonal "
            "rescaling, random orthogonal butterflies with permutations drawn per Linear, one symmetric scale per "
            "matrix at 2.4 x RMS, LDLQ and one greedy pass; H's scale cannot matter: it is rescaled before their "
            "0.01 I); on zoo's parity fixtures, with the same rotations, its "
            "reconstruction error equals their code's, and over 30 random draws the means agree within sampling "
            "error (tests/test_parity.py)."
        ),
        "zoo-obs": (
            "zoo's variant of QuIP (params.variant: zoo-obs), not the authors' algorithm: a per-row min-max grid "
            "(the authors: one symmetric scale per matrix, 2.4 x RMS, clipped), no greedy pass after LDLQ, "
            "Kronecker rotations without permutations shared by Linears of a shape, no diagonal rescaling. "
            "Measured on the tiny base at W2 (bench/methods.py): 58.20 pydoc perplexity vs the authors' algorithm "
            "57.47 (their code: 57.45)."
        ),
    },
    "slimllm": {
        "authors": (
            "the authors' algorithm (Aaronhuang-778/SliM-LLM at cfdf5ff, slim-llm/run.py: their Hessian averaged per "
            "sequence plus their absolute 0.01, groups ranked by Hessian salience, k pairs moved one bit up and one bit "
            "down with k in 1 .. n/2 - 1 scored by their output KL on the calibration windows, SQC's per-row search of "
            "101 range factors in [0.9, 1.1] on |error|^2.4, 1-bit groups as mean + mean|w| sign, GPTQ's loop). One "
            "extension is zoo's: in a layer of 2 or 3 groups, where their search range is empty and their code stops, "
            "the same KL chooses between no pair and one. From calibration windows its allocation and weights equal "
            "their code's (tests/test_slimllm.py). Through zoo build, against their code in the same pipeline "
            "(bench/slimllm.py, one thread): 57.96 pydoc perplexity at W2 on the tiny base (theirs 57.96), 72.79 on "
            "the outlier proxy (theirs 72.68); params.score: second-order, zoo's score from H alone: 57.86 and 75.12."
        ),
        "zoo-obs": (
            "zoo's variant of SliM-LLM (params.variant: zoo-obs), not the authors' algorithm: k searched from 0 on "
            "the salience-weighted rounding error (the authors: from 1, on output KL), no salience-weighted quantizer "
            "calibration (per-row min-max grids), 1-bit groups as mean +- mean|w - mean| (params.one_bit_grid: "
            "mean-binary, the default) or on a 1-bit min-max grid (one_bit_grid: minmax), dead inputs zeroed. "
            "Measured on the tiny base (bench/methods.py, one thread): 61.36 pydoc perplexity at W2 (minmax: 59.38) "
            "vs the authors' algorithm 57.96."
        ),
    },
    "irqlora": (
        "IR-QLoRA as its authors' code runs it (htqin/IR-QLoRA at e6fef4a, utils.py): ICQ's per-block offset "
        "searched over 201 candidates around the block median for the largest NF4 code entropy, stored as 8-bit "
        "codes per 256 blocks, and IEC's parameter-free elastic connection in the adapters. On a seeded "
        "heavy-tailed weight every block reaches their code entropy exactly (their offset bit for bit in about "
        "2000 of 2048 blocks, the rest exact entropy ties that summation order breaks), and its IEC output "
        "equals theirs (tests/test_parity_irqlora.py). One choice is zoo's: it quantizes "
        "around the stored 8-bit offset, not the exact one, so a loader rebuilds the same codes (reconstruction "
        "error 0.05% apart). Not implemented: their integer-quantizer variant."
    ),
    "dbllm": (
        "zoo's implementation of DB-LLM from the paper (the authors published no code): flexible dual binarization "
        "inside the OBS loop (GPTQ's relative dampening, so H's scale cannot matter), then deviation-aware "
        "distillation (params.distillation: true, the default) from the "
        "16-bit base on the calibration windows. zoo's choices where the paper's details were not at hand: the "
        "per-token KL to the teacher weighted by (h_T * h_S) ** (gamma / 2), the normalized entropies of teacher and "
        "student (gamma 1), only the per-row-block scales and offsets trained with the binary codes fixed (the paper "
        "also trains the latent weights), 2 epochs at Adam lr 5e-4. Measured on the tiny base (bench/methods.py, one "
        "thread): 56.76 pydoc perplexity vs 57.06 without distillation (16-bit base 56.25)."
    ),
}


def fidelity(method: str, variant: str | None = None) -> str:
    """What to say about ``method``'s faithfulness; empty when it is the reference implementation. A method
    with variants (``params.variant``) has one text per variant; ``None`` means its default, listed first."""
    entry = FIDELITY.get(method, "")
    if isinstance(entry, str):
        return entry
    return entry.get(variant or next(iter(entry)), "")


def variants(method: str) -> tuple[str, ...]:
    """The named variants of ``method`` (its ``params.variant`` values, the default first); () for none."""
    entry = FIDELITY.get(method, "")
    return () if isinstance(entry, str) else tuple(entry)
