"""One model measured with one recipe's suite: loaded, placed, run through every metric, freed.

``zoo eval`` measures the build and its 16-bit base through here, the same way, so their ratio is the
recovery. The model is placed on one device, over every visible GPU, or past a host-memory cap on disk
(``load``), and dropped before an engine that loads the checkpoint itself (vLLM, lmms-eval) starts. A
packed checkpoint (``zoo.packed``) loads like any other once ``import zoo.packed`` has registered zoo's
quant_method with transformers.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.families import FAMILIES
from zoo.pipeline.options import RunOptions
from zoo.recipe import Recipe
from zoo.records import Measurement
from zoo.tasks import TASKS
from zoo.variant.metrics import perplexity_key

log = logging.getLogger("zoo.evaluation.run")  # the eval stage logs under one name, whichever module speaks


def measure(
    model_dir: Path, recipe: Recipe, options: RunOptions, samples_to: Path | None = None, offload_dir: Path | None = None
) -> Measurement:
    """Every metric of the recipe's suite on the model in ``model_dir``, on ``options.device`` (already
    resolved: cuda or cpu). lm-eval's per-item outputs go to ``samples_to`` when given (their sha256 in
    ``details["samples_sha256"]``); past ``options.host_memory`` bytes of host RAM the weights go to
    ``offload_dir``, removed after."""
    import torch
    import transformers

    start = time.time()
    family = FAMILIES.get(recipe.family)
    dtype = torch.bfloat16 if options.device == "cuda" else torch.float32
    from zoo.lora.load import is_adapter

    model: Any = None
    if options.backend == "vllm" and not is_adapter(model_dir):
        pass  # vLLM loads the checkpoint itself, for the perplexities (prompt log-probabilities) and the tasks
    elif is_adapter(model_dir):  # QLoRA / IR-QLoRA: the quantized base plus the adapter, as users load it
        from zoo.loader import resolve
        from zoo.lora.load import load as load_adapter

        model = load_adapter(model_dir, resolve(recipe, options.recipes).path, options.device, dtype).base_model.model
    else:
        if _is_zoo_packed(model_dir):
            import zoo.packed  # noqa: F401  # registers quant_method "zoo" with transformers

        auto = getattr(transformers, family.auto_class)
        model = load(auto, model_dir, dtype, options.device, options.host_memory, offload_dir)
    held = {"model": model}  # the one reference, so _measure can drop the model before another engine loads
    del model
    try:
        metrics, details = _measure(held, model_dir, recipe, options, samples_to)
    finally:
        held.clear()
        free()
        if offload_dir is not None:
            shutil.rmtree(offload_dir, ignore_errors=True)
    return Measurement(
        metrics=metrics,
        details=details,
        dtype=str(dtype).removeprefix("torch."),
        device=options.device,
        duration_s=round(time.time() - start, 2),
    )


def _is_zoo_packed(model_dir: Path) -> bool:
    from zoo.workdir import read_json

    q = (read_json(model_dir / "config.json") or {}).get("quantization_config")
    return isinstance(q, dict) and q.get("quant_method") == "zoo"


def free() -> None:
    """Give a model's memory back before the next engine (the other model, vLLM, lmms-eval) loads its own."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load(auto: Any, model_dir: Path, dtype: Any, device: str, host_memory: int | None, offload_dir: Path | None) -> Any:
    """The model on one device; over every visible GPU when there are several (accelerate's
    ``device_map="auto"``, each GPU's free memory less a tenth for the eval's activations); past
    ``host_memory`` bytes of host RAM, on disk in ``offload_dir``."""
    import torch

    gpus = torch.cuda.device_count() if device == "cuda" else 0
    if host_memory is None and gpus <= 1:
        return auto.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False).to(device).eval()
    max_memory: dict[int | str, int] = {i: int(torch.cuda.mem_get_info(i)[0] * 0.9) for i in range(gpus)}
    kwargs: dict[str, Any] = {}
    if host_memory is not None:
        max_memory["cpu"] = host_memory
        if offload_dir is None:
            raise ValueError("a host-memory cap needs an offload folder")
        offload_dir.mkdir(parents=True, exist_ok=True)
        kwargs["offload_folder"] = str(offload_dir)
    else:
        import psutil

        max_memory["cpu"] = int(psutil.virtual_memory().available * 0.9)
    kwargs.update(device_map="auto", max_memory=max_memory)
    model = auto.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False, **kwargs)
    log.info("%s placed over %s", model_dir.name, sorted({str(v) for v in getattr(model, "hf_device_map", {}).values()}))
    return model.eval()


def refuse_packed_offload(model_dir: Path) -> None:
    """compressed-tensors 0.19 cannot read its packed weights back from accelerate's disk offload (they return
    as int8 and decompression aborts), so a capped eval of such a checkpoint stops before any measuring."""
    from zoo.workdir import read_json

    config = read_json(model_dir / "config.json") or {}
    q = config.get("quantization_config")
    if isinstance(q, dict) and q.get("quant_method") == "compressed-tensors" and q.get("format") != "dense":
        raise UsageError(
            f"{model_dir.parent.name}'s checkpoint is packed by compressed-tensors, which cannot be offloaded to disk "
            "(--host-memory); fix: evaluate it on GPUs that hold it (zoo plan names them) or without --host-memory"
        )


def input_device(model: Any, device: str) -> str:
    """Where a batch goes in: the first module's device under a device map (accelerate's hooks move it
    on from there), else the one device."""
    placed = getattr(model, "hf_device_map", None)
    if not placed:
        return device
    first = next(iter(placed.values()))
    return f"cuda:{first}" if isinstance(first, int) else "cpu" if first == "disk" else str(first)


def task_data(recipe: Recipe, recipe_dir: Path) -> Path | None:
    from zoo.evaluation.harness import BUILTIN_DATA

    d = recipe.eval.task_data
    return None if d is None else BUILTIN_DATA if d == "builtin" else (recipe_dir / d)


def _measure(
    held: dict[str, Any], model_dir: Path, recipe: Recipe, options: RunOptions, samples_to: Path | None
) -> tuple[dict[str, float], dict[str, Any]]:
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    metrics, details = _perplexities(held["model"], tokenizer, model_dir, recipe, options)
    limit, batch_size, backend, device = options.limit, options.batch_size, options.backend, options.device
    text_tasks = [t for t in recipe.eval.tasks if TASKS[t].harness == "lm-eval"]
    vision_tasks = [t for t in recipe.eval.tasks if TASKS[t].harness == "lmms-eval"]
    if text_tasks:
        from zoo.evaluation.harness import evaluate

        if backend == "vllm":  # vLLM loads the checkpoint itself: the HF model's memory goes first
            held["model"] = None
            free()
        data = task_data(recipe, options.recipes)
        res = evaluate(held["model"], tokenizer, text_tasks, data, limit, batch_size, backend, model_dir)
        metrics.update(res["metrics"])
        details["tasks"] = res["tasks"]
        if samples_to is not None and res["samples"]:
            from zoo.evaluation.harness import write_samples

            details["samples_sha256"] = write_samples(samples_to, res["samples"])
    if vision_tasks:
        from zoo.evaluation.vision import evaluate as evaluate_vision

        held["model"] = None  # lmms-eval loads the checkpoint itself
        free()
        res = evaluate_vision(model_dir, vision_tasks, limit, batch_size, device)
        metrics.update(res["metrics"])
        details["vision_tasks"] = res["tasks"]
    return metrics, details


def _perplexities(
    model: Any, tokenizer: Any, model_dir: Path, recipe: Recipe, options: RunOptions
) -> tuple[dict[str, float], dict[str, Any]]:
    """The study's perplexity on each of the recipe's texts (``zoo.evaluation.perplexity``)."""
    from zoo.data import DATASETS
    from zoo.data.calibration import token_ids
    from zoo.data.text import load_text
    from zoo.evaluation.perplexity import C4_WINDOWS, perplexity
    from zoo.progress import reporter

    metrics: dict[str, float] = {}
    details: dict[str, Any] = {"perplexity": {}}
    for name in recipe.eval.perplexity:
        text = load_text(name, DATASETS[name].eval_split)
        ids = token_ids(text.text, tokenizer)
        seqlen = recipe.eval.seqlen
        cap = C4_WINDOWS if name == "c4" else None
        if options.limit is not None:
            cap = min(cap or options.limit, options.limit)
        if model is None:  # the vLLM backend: no HF model was loaded
            from zoo.evaluation import vllm_ppl

            ppl = vllm_ppl.perplexity(model_dir, ids, seqlen, cap, dtype="bfloat16" if options.device == "cuda" else "auto")
        else:
            where = input_device(model, options.device)
            progress = reporter(f"{model_dir.parent.name} ppl {name}")
            ppl = perplexity(model, ids, seqlen, where, cap, progress, options.batch_size)
        metrics[perplexity_key(name)] = ppl.value
        entry: dict[str, Any] = {
            **({"backend": "vllm"} if model is None else {}),
            "windows": ppl.windows,
            "tokens": ppl.tokens,
            "seqlen": seqlen,
            "text_sha256": text.identity["text_sha256"],
        }
        for k in ("source", "revision", "commit"):  # where the text came from; the commit its revision resolved to
            if k in text.identity:
                entry[k] = text.identity[k]
        details["perplexity"][name] = entry
    return metrics, details
