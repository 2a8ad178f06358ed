"""The QLoRA / IR-QLoRA build: quantize the base, attach LoRA, train, write the adapter.

What lands in ``<workdir>/<name>/model``:

- ``adapter_config.json`` + ``adapter_model.safetensors``: a standard peft LoRA adapter whose
  ``base_model_name_or_path`` / ``revision`` name the exact 16-bit base;
- the tokenizer, so the folder is all a user needs beside the base;
- ``quantization.json``: the base's quantization (NF4, block, double quantization, bits per weight,
  the ``BitsAndBytesConfig`` that reproduces it), the LoRA and training settings, the loss curve;
- ``icq.safetensors`` (IR-QLoRA): the per-block offsets of every quantized Linear;
- ``merged/`` (``merge: true``): a 16-bit checkpoint, the dequantized base plus the merged adapter.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from zoo.errors import ZooError
from zoo.lora.params import LoRAParams
from zoo.recipe import Recipe

log = logging.getLogger(__name__)
CURVE_POINTS = 200


class LoRAJob(Protocol):
    """What a LoRA build reads of the build context (``zoo.methods.base.BuildContext`` has all of it);
    a protocol, so this machinery never imports the methods that use it."""

    @property
    def recipe(self) -> Recipe: ...
    @property
    def load_model(self) -> Callable[[], Any]: ...
    @property
    def processor(self) -> Any: ...
    @property
    def device(self) -> str: ...
    @property
    def out(self) -> Path: ...
    @property
    def recipe_dir(self) -> Path: ...
    @property
    def state_dir(self) -> Path: ...


def bnb_config(blocksize: int, double_quant: bool, compute_dtype: str) -> dict[str, Any]:
    """The ``BitsAndBytesConfig`` keywords that rebuild a QLoRA base (bitsandbytes' block size is 64)."""
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": double_quant,
        "bnb_4bit_compute_dtype": compute_dtype,
    } if blocksize == 64 else {}  # fmt: skip


def base_reference(recipe: Any) -> tuple[str, str | None]:
    b = recipe.base
    if b.repo_id:
        return b.repo_id, b.revision
    return (b.builtin, None) if b.builtin else (str(b.path), None)


def _curve(losses: tuple[float, ...]) -> list[list[float]]:
    every = max(1, len(losses) // CURVE_POINTS)
    return [[i + 1, round(sum(losses[i : i + every]) / len(losses[i : i + every]), 5)] for i in range(0, len(losses), every)]


def _save_taus(path: Path, taus: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for name, t in taus.items():
        tensors[f"{name}.tau_codes"] = t.codes.contiguous().cpu()
        tensors[f"{name}.tau_scales"] = t.scales.contiguous().cpu()
    save_file(tensors, str(path), metadata={"format": "zoo-icq", "offset": "0"})


def _merge(ctx: LoRAJob, peft_model: Any, modules: tuple[str, ...], out: Path) -> None:
    """Dequantized base + LoRA delta, into a fresh copy of the 16-bit base, saved with the tokenizer."""
    from zoo.lora.quantized import dequantized

    fresh = ctx.load_model()
    inner = peft_model.base_model.model
    for name in modules:
        layer = inner.get_submodule(name)
        base = getattr(layer, "base_layer", layer)
        w = dequantized(base)
        if hasattr(layer, "get_delta_weight"):
            w = w + layer.get_delta_weight("default").float().to(w.device)
        target = fresh.get_submodule(name).weight
        target.data.copy_(w.to(target.device, target.dtype))
    fresh.save_pretrained(out, safe_serialization=True)
    ctx.processor.save_pretrained(out)


def _run_key(recipe: Any, data: dict[str, Any], backend: str, device: str) -> str:
    """What a training checkpoint must match to be resumed: everything but the checkpoint interval and the merge switch."""
    raw = recipe.model_dump(mode="json")
    for k in ("save_every", "merge"):
        raw["params"].pop(k, None)
    return hashlib.sha256(json.dumps([raw, data, backend, device], sort_keys=True, default=str).encode()).hexdigest()


def _check_rank(model: Any, rank: int) -> None:
    from zoo.lora.quantized import linears

    for name, lin in linears(model):
        if lin.in_features % rank or lin.out_features % rank:
            raise ZooError(
                f"{name}: LoRA rank {rank} does not divide its {lin.in_features} inputs and {lin.out_features} outputs, "
                "which information elastic connection needs; fix: params.rank (a power of two) or elastic_connection: false"
            )


def run(ctx: LoRAJob, p: LoRAParams, calibrate: tuple[float, float] | None, elastic: bool) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    from zoo.data import instructions
    from zoo.lora import iec
    from zoo.lora.quantized import default_backend, quantize_base
    from zoo.lora.train import train
    from zoo.progress import reporter

    recipe = ctx.recipe
    blocksize = int(recipe.weights.group_size)
    dtype = torch.bfloat16 if ctx.device == "cuda" else torch.float32
    tokenizer = getattr(ctx.processor, "tokenizer", ctx.processor)
    if tokenizer.eos_token_id is None:
        raise ZooError(
            f"{recipe.name}: the base's tokenizer has no EOS token, which ends every response; fix: use a base that has one"
        )
    data = instructions.load(p.dataset, ctx.recipe_dir)
    examples = instructions.tokenize(data.rows, tokenizer, p.max_seq_len)
    if not examples:
        raise ZooError(f"{recipe.name}: no usable rows in the instruction data {data.identity['source']}; fix: params.dataset")
    log.info("%s: %d instruction rows (%s), %d usable", recipe.name, len(data.rows), data.identity["source"], len(examples))
    backend = default_backend()
    model = ctx.load_model()
    if elastic:
        _check_rank(model, p.rank)  # before the base is quantized: the tau search can take long
    qbase = quantize_base(
        model, blocksize, p.double_quant, ctx.device, dtype, backend,
        calibrate=(float(calibrate[0]), int(calibrate[1])) if calibrate else None,
        report=reporter(f"{recipe.name} quantize base"),
    )  # fmt: skip
    log.info("%s: base in NF4 (%s backend), %.3f bits/weight", recipe.name, backend, qbase.bits_per_weight)
    if ctx.device == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(p.seed)
    alpha: Any = p.alpha  # peft annotates lora_alpha as int; it is only divided by r, so a float is fine
    config = LoraConfig(
        r=p.rank, lora_alpha=alpha, lora_dropout=p.dropout, target_modules=list(p.target_modules), bias="none",
        task_type="CAUSAL_LM",
    )  # fmt: skip
    peft_model = get_peft_model(model, config)
    if elastic:
        log.info("%s: information elastic connection on %d LoRA branches", recipe.name, iec.attach(peft_model))
    key = _run_key(recipe, data.identity, backend, ctx.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result = train(peft_model, examples, p, pad, ctx.device, ctx.state_dir, key, reporter(f"{recipe.name} train"))
    log.info("%s: trained %d steps, loss %.3f -> %.3f", recipe.name, result.steps, result.losses[0], result.losses[-1])
    betas = iec.fold(peft_model) if elastic else {}
    repo, revision = base_reference(recipe)
    cfg = peft_model.peft_config["default"]
    cfg.base_model_name_or_path, cfg.revision = repo, revision
    peft_model.save_pretrained(str(ctx.out), safe_serialization=True, save_embedding_layers=False)
    (ctx.out / "README.md").unlink(missing_ok=True)  # peft's stub card; zoo writes the real one
    ctx.processor.save_pretrained(ctx.out)
    if qbase.taus:
        _save_taus(ctx.out / "icq.safetensors", qbase.taus)
    compute = str(dtype).removeprefix("torch.")
    if p.merge:
        _merge(ctx, peft_model, qbase.modules, ctx.out / "merged")
    info = {
        "base": {"reference": repo, "revision": revision},
        "quantization": {
            "quant_type": "nf4",
            "blocksize": blocksize,
            "double_quant": p.double_quant,
            "modules": len(qbase.modules),
            "bits_per_weight": qbase.bits_per_weight,
            "backend": qbase.backend,
            "icq": {"file": "icq.safetensors", "tau_range": calibrate[0], "tau_steps": calibrate[1]} if calibrate else None,
        },
        "bitsandbytes_config": None if calibrate else bnb_config(blocksize, p.double_quant, "bfloat16"),
        "lora": {"rank": p.rank, "alpha": p.alpha, "dropout": p.dropout, "target_modules": list(p.target_modules)},
        "elastic_connection": {"folded": True, "betas": betas} if elastic else None,
        "training": {
            "dataset": data.identity,
            "examples": len(examples),
            "steps": result.steps,
            "batch_size": p.batch_size,
            "learning_rate": p.learning_rate,
            "max_seq_len": p.max_seq_len,
            "compute_dtype": compute,
            "seed": p.seed,
            "resumed_from_step": result.resumed_from,
            "seconds": result.seconds,
            "loss_curve": _curve(result.losses),
        },
    }
    from zoo.records import write_quantization

    write_quantization(ctx.out, recipe.method, "adapter", info)
    return {
        "bits_per_weight": qbase.bits_per_weight,
        "backend": qbase.backend,
        "steps": result.steps,
        "loss_first": round(result.losses[0], 5),
        "loss_last": round(result.losses[-1], 5),
        "resumed_from_step": result.resumed_from,
        "merged": p.merge,
    }
