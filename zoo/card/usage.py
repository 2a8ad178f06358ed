"""What a card tells someone about to deploy a variant: memory to serve it, and what it is fit for.

Serving memory is the checkpoint's bytes on disk (what loads onto the accelerator) plus a bf16 KV
cache of ``KV_CONTEXT`` tokens (or the checkpoint's ``max_position_embeddings`` when fewer) for one
sequence, from the checkpoint's own config (layers, KV heads, head size); activations and the
framework's own memory come on top and are left out, as the text says.
Intended use follows the method's class: weight-only integer kernels, W8A8, research checkpoints of
the 1-2 bit methods (stored dequantized in 16-bit), and LoRA adapters on an NF4 base.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.recipe import Recipe
from zoo.records import BuildRecord

KV_CONTEXT = 8192

INTENDED = {
    "weight-only": (
        "Serving with less accelerator memory than the 16-bit base: integer weights with 16-bit activations, run "
        "by vLLM's and transformers' kernels. Check the evaluation above on your own tasks before replacing the "
        "base; low bit widths lose more on reasoning and long-context tasks than perplexity shows."
    ),
    "w8a8": (
        "Serving where 8-bit (or lower) activation kernels are available; integer activations make the "
        "accuracy depend more on the input distribution than weight-only quantization does."
    ),
    "research": (
        "Research on ultra-low-bit quantization, reproducing the study's cell. The weights are stored "
        "dequantized in 16-bit: no memory or speed benefit, and not meant for deployment."
    ),
    "adapter": (
        "Fine-tuned use on instruction-style prompts, with the adapter on its NF4 base; the fine-tuning data "
        "(named above) shapes its behaviour, and knowledge benchmarks can drop below plain NF4's."
    ),
}


def method_class(recipe: Recipe) -> str:
    if recipe.format == "adapter":
        return "adapter"
    if recipe.format == "fake":  # zoo's own 1-2 bit methods: quantized, then stored dequantized in 16-bit
        return "research"
    return "w8a8" if recipe.activations else "weight-only"


def _text_config(model_dir: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    text = config.get("text_config", config) if isinstance(config, dict) else None
    return text if isinstance(text, dict) else None


def serving_memory(recipe: Recipe, build: BuildRecord | None, model_dir: Path) -> dict[str, Any] | None:
    """Weights and KV-cache bytes to serve one sequence of ``KV_CONTEXT`` tokens; None before a build.
    An adapter's weights are its NF4 base (parameters x the measured bits per weight) plus itself; its
    config is the base's, which the adapter folder does not hold, so its KV cache is left out."""
    if build is None:
        return None
    text = _text_config(model_dir) or {}
    layers, heads = text.get("num_hidden_layers"), text.get("num_attention_heads")
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or (text["hidden_size"] // heads if heads and text.get("hidden_size") else None)
    positions = text.get("max_position_embeddings")
    # the context the snippet serves and the KV cache is sized for: never past what the checkpoint was built for
    context = min(KV_CONTEXT, positions) if isinstance(positions, int) and positions > 0 else KV_CONTEXT
    kv = 2 * layers * kv_heads * head_dim * 2 * context if layers and kv_heads and head_dim else None
    weights = build.total_bytes
    if recipe.format == "adapter":
        weights += int(recipe.base.parameters * 1e9 * float(build.method.get("bits_per_weight") or 4.127) / 8)
    from zoo.workdir import size_text

    return {
        "weights_gb": weights / 1e9,
        "kv_gb": kv / 1e9 if kv is not None else None,
        "total_gb": (weights + (kv or 0)) / 1e9,
        "weights_text": size_text(weights),
        "kv_text": size_text(kv) if kv is not None else None,
        "total_text": size_text(weights + (kv or 0)),
        "context": context,
    }
