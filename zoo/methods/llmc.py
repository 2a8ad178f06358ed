"""What RTN, GPTQ, AWQ and SmoothQuant share: recipe -> llm-compressor modifiers -> compressed-tensors.

Calibration runs through llm-compressor's sequential pipeline with the family's decoder layer as the
unit, so the accelerator holds one decoder layer (plus its activations) at a time while the rest of
the model stays on the host, or on disk where the host is too small (see ``zoo.loader``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from zoo.methods.base import BuildContext

log = logging.getLogger(__name__)


def weight_args(recipe: Any) -> Any:
    from compressed_tensors.quantization import QuantizationArgs

    w = recipe.weights
    grouped = w.group_size != "channel"
    return QuantizationArgs(
        num_bits=int(w.bits),
        type="int",
        symmetric=bool(w.symmetric),
        strategy="group" if grouped else "channel",
        group_size=w.group_size if grouped else None,
    )


def activation_args(recipe: Any) -> Any:
    from compressed_tensors.quantization import QuantizationArgs

    a = recipe.activations
    if a is None:
        return None
    return QuantizationArgs(num_bits=a.bits, type="int", symmetric=True, strategy=a.granularity, dynamic=a.dynamic)


def config_groups(recipe: Any) -> dict[str, Any]:
    from compressed_tensors.quantization import QuantizationScheme

    scheme = QuantizationScheme(targets=["Linear"], weights=weight_args(recipe), input_activations=activation_args(recipe))
    return {"group_0": scheme}


def scoped(patterns: list[str], scope: str) -> list[str]:
    """``re:.*q_proj$`` -> ``re:.*language_model.*q_proj$`` so mappings skip the vision tower."""
    if not scope:
        return patterns
    return [f"re:.*{scope}.*{p.removeprefix('re:.*')}" if p.startswith("re:.*") else p for p in patterns]


@contextlib.contextmanager
def _cpu_safe() -> Iterator[None]:
    """llm-compressor pins cached activations unconditionally; pinning needs an accelerator."""
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.cuda.is_available():
        yield
        return
    original = IntermediatesCache.pin_memory
    IntermediatesCache.pin_memory = lambda self, *a, **k: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        IntermediatesCache.pin_memory = original  # type: ignore[method-assign]


def run(ctx: BuildContext[Any], modifiers: list[Any], data_free: bool = False) -> dict[str, Any]:
    """Apply ``modifiers`` with llm-compressor ``oneshot`` and save a compressed-tensors checkpoint."""
    import llmcompressor
    from llmcompressor import oneshot

    kwargs: dict[str, Any] = {"pipeline": "datafree"} if data_free else {}
    if not data_free:
        from datasets import Dataset

        windows = ctx.data.windows
        if ctx.data.images:
            from zoo.data.images import collate, image_text_rows

            tokenizer = getattr(ctx.processor, "tokenizer", ctx.processor)
            data = Dataset.from_list(image_text_rows(ctx.processor, tokenizer, windows, ctx.data.images))
            extra: dict[str, Any] = {"data_collator": collate}
        else:
            data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
            extra = {"max_seq_length": max(len(w) for w in windows)}
        kwargs = {
            "dataset": data,
            **extra,
            "num_calibration_samples": len(windows),
            "shuffle_calibration_samples": False,
            "pipeline": "sequential",
            "sequential_targets": [ctx.family.decoder_layer],
        }
    model = ctx.load_model()
    with _cpu_safe():
        oneshot(model=model, recipe=modifiers, **kwargs)
    save(ctx, model)
    return {"backend": "llmcompressor", "backend_version": llmcompressor.__version__}


def save(ctx: BuildContext[Any], model: Any) -> None:
    import warnings

    with warnings.catch_warnings():
        # offloaded modules are gathered one shard at a time; small shards bound that peak
        warnings.filterwarnings("ignore", message="Attempting to save a model with offloaded modules")
        model.save_pretrained(ctx.out, save_compressed=True, max_shard_size=ctx.max_shard_bytes)
    ctx.processor.save_pretrained(ctx.out)
    # llm-compressor's own recipe.yaml stays beside the checkpoint: with it, llm-compressor alone re-runs
    # the quantization (build.json holds zoo's recipe, which says the same in zoo's terms)
    config_path = ctx.out / "config.json"
    config = json.loads(config_path.read_text())
    qc = config.get("quantization_config", {})
    if ctx.family.multimodal and qc:
        # llm-compressor lists ignored modules under their in-memory names, which do not match the
        # checkpoint's names on reload; the family's patterns match both.
        qc["ignore"] = list(ctx.family.ignore)
        config_path.write_text(json.dumps(config, indent=2) + "\n")
