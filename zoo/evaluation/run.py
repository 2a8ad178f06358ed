"""The eval stage: a built checkpoint and its 16-bit base, measured the same way, and the gate.

Reads ``build.json`` (so it runs alone after ``zoo build``) and writes ``eval.json`` beside it. The
base is measured once per base and suite and cached under ``<workdir>/_baselines/``. Recovery is
quantized/base for accuracies and base/quantized for perplexities, in percent. A recipe's
``eval.min_recovery`` is the gate: any metric below it fails the stage unless regressions are allowed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.errors import GateError, NeedsAcceleratorError, UsageError
from zoo.families import FAMILIES
from zoo.lock import stage_lock
from zoo.recipe import Recipe
from zoo.records import Baseline, BaselineRecord, BuildRecord, EvalRecord, Gate, Measurement
from zoo.tasks import TASKS
from zoo.workdir import Layout, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    name: str
    status: str  # "evaluated" or "skipped"
    eval_json: Path
    metrics: dict[str, float | None]
    recovery: dict[str, float]
    gate_failed: tuple[str, ...]


def _versions() -> dict[str, str | None]:
    from zoo.machine import package_versions

    return package_versions(("lm-eval", "lmms-eval", "torch", "transformers"))


def suite(recipe: Recipe, limit: int | None, batch_size: int, backend: str = "hf") -> dict[str, Any]:
    """What decides the numbers: cached baselines and finished evals are keyed by its hash."""
    return {
        "eval": recipe.eval.model_dump(mode="json", exclude={"min_recovery"}),
        "backend": backend,
        "limit": limit,
        "batch_size": batch_size,
        "versions": _versions(),
    }


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _task_data(recipe: Recipe, recipe_dir: Path) -> Path | None:
    from zoo.evaluation.harness import BUILTIN_DATA

    d = recipe.eval.task_data
    return None if d is None else BUILTIN_DATA if d == "builtin" else (recipe_dir / d)


def measure(
    model_dir: Path,
    recipe: Recipe,
    recipe_dir: Path,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str = "hf",
    samples_to: Path | None = None,
    host_memory: int | None = None,
    offload_dir: Path | None = None,
) -> Measurement:
    """Every metric of the recipe's suite on the model in ``model_dir``; lm-eval's per-item outputs go to
    ``samples_to`` when given (their sha256 in ``details["samples_sha256"]``). The model is placed by
    ``load`` (``host_memory``: bytes of host RAM for weights, the rest in ``offload_dir``, removed after)
    and freed before this returns."""
    import torch
    import transformers

    start = time.time()
    family = FAMILIES.get(recipe.family)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    from zoo.lora.load import is_adapter

    if is_adapter(model_dir):  # QLoRA / IR-QLoRA: the quantized base plus the adapter, as users load it
        from zoo.loader import resolve
        from zoo.lora.load import load as load_adapter

        model = load_adapter(model_dir, resolve(recipe, recipe_dir).path, device, dtype).base_model.model
    else:
        model = load(getattr(transformers, family.auto_class), model_dir, dtype, device, host_memory, offload_dir)
    held = {"model": model}  # the one reference, so _measure can drop the model before another engine loads
    del model
    try:
        return _measure(held, model_dir, recipe, recipe_dir, device, limit, batch_size, backend, samples_to, start, dtype)
    finally:
        held.clear()
        free()
        if offload_dir is not None:
            shutil.rmtree(offload_dir, ignore_errors=True)


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


def _measure(
    held: dict[str, Any],
    model_dir: Path,
    recipe: Recipe,
    recipe_dir: Path,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str,
    samples_to: Path | None,
    start: float,
    dtype: Any,
) -> Measurement:
    import transformers

    from zoo.data import DATASETS
    from zoo.data.calibration import token_ids
    from zoo.data.text import load_text
    from zoo.evaluation.perplexity import C4_WINDOWS, perplexity
    from zoo.progress import reporter

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {"perplexity": {}}
    for name in recipe.eval.perplexity:
        text = load_text(name, DATASETS[name].eval_split)
        ids = token_ids(text.text, tokenizer)
        seqlen = recipe.eval.seqlen
        cap = C4_WINDOWS if name == "c4" else None
        if limit is not None:
            cap = min(cap or limit, limit)
        where = input_device(held["model"], device)
        ppl = perplexity(held["model"], ids, seqlen, where, cap, reporter(f"{model_dir.parent.name} ppl {name}"), batch_size)
        metrics[f"ppl/{name}"] = ppl.value
        entry: dict[str, Any] = {
            "windows": ppl.windows,
            "tokens": ppl.tokens,
            "seqlen": seqlen,
            "text_sha256": text.identity["text_sha256"],
        }
        for k in ("source", "revision", "commit"):  # where the text came from; the commit its revision resolved to
            if k in text.identity:
                entry[k] = text.identity[k]
        details["perplexity"][name] = entry
    text_tasks = [t for t in recipe.eval.tasks if TASKS[t].harness == "lm-eval"]
    vision_tasks = [t for t in recipe.eval.tasks if TASKS[t].harness == "lmms-eval"]
    if text_tasks:
        from zoo.evaluation.harness import evaluate

        if backend == "vllm":  # vLLM loads the checkpoint itself: the HF model's memory goes first
            held["model"] = None
            free()
        data = _task_data(recipe, recipe_dir)
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
    return Measurement(
        metrics=metrics,
        details=details,
        dtype=str(dtype).removeprefix("torch."),
        device=device,
        duration_s=round(time.time() - start, 2),
    )


def base_key(recipe: Recipe) -> str:
    """The folder name of a base's cached baselines."""
    b = recipe.base
    raw = b.builtin or (f"{b.repo_id}@{b.revision}" if b.repo_id else f"path-{b.path}")
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", raw)


def baseline(
    recipe: Recipe,
    workdir: Path,
    recipe_dir: Path,
    device: str,
    limit: int | None,
    batch_size: int,
    force: bool,
    backend: str = "hf",
    host_memory: int | None = None,
) -> BaselineRecord:
    from zoo.loader import resolve

    path = _baseline_path(recipe, workdir, limit, batch_size, backend)
    cached = None if force else BaselineRecord.read_from(path)
    if cached:
        log.info("%s: 16-bit baseline from %s", recipe.name, path)
        return cached
    log.info("%s: measuring the 16-bit base %s", recipe.name, recipe.base_name)
    source = resolve(recipe, recipe_dir)
    offload = Layout(workdir, recipe.name).offload if host_memory is not None else None
    measured = measure(source.path, recipe, recipe_dir, device, limit, batch_size, backend, None, host_memory, offload)
    result = BaselineRecord(base=source.identity, **measured.model_dump())
    result.write_to(path)
    return result


def recovery(metrics: dict[str, float | None], base: dict[str, float | None]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        b = base.get(k)
        if b is None or v is None:
            continue
        if k.startswith("ppl/"):
            out[k] = 100.0 * b / v if v else 0.0
        elif b:
            out[k] = 100.0 * v / b
    return out


def gate(recipe: Recipe, rec: dict[str, float]) -> tuple[str, ...]:
    floor = recipe.eval.min_recovery
    if floor is None:
        return ()
    return tuple(f"{k} {v:.1f}% < {floor:g}%" for k, v in sorted(rec.items()) if v < floor)


def evaluate(
    recipe: Recipe,
    workdir: Path,
    recipe_dir: Path,
    device: str = "auto",
    limit: int | None = None,
    batch_size: int = 1,
    force: bool = False,
    allow_regression: bool = False,
    backend: str = "hf",
    wait: bool = False,
    host_memory: int | None = None,
) -> EvalResult:
    """Measure the build and its base into eval.json (atomic), holding the recipe's lock throughout.
    ``host_memory``: bytes of host RAM for each model's weights; the rest is offloaded to disk inside the
    recipe's folder (removed after). Placement never changes a number, so it is not part of the suite."""
    layout = Layout(workdir, recipe.name)
    with stage_lock(layout, "eval", wait):
        return _evaluate(recipe, layout, recipe_dir, device, limit, batch_size, force, allow_regression, backend, host_memory)


def measure_baselines(
    recipes: list[Recipe],
    workdir: Path,
    recipe_dir: Path,
    device: str = "auto",
    limit: int | None = None,
    batch_size: int = 1,
    backend: str = "hf",
    host_memory: int | None = None,
    wait: bool = False,
) -> dict[str, Path]:
    """Each recipe's 16-bit baseline into the cache ``zoo eval`` reads (measured once per base and suite),
    so a release measures a base before its variants, not once per variant. Returns where each is."""
    dev = _device(device)
    out: dict[str, Path] = {}
    for recipe in recipes:
        layout = Layout(workdir, recipe.name)
        with stage_lock(layout, "eval", wait):
            baseline(recipe, workdir, recipe_dir, dev, limit, batch_size, False, backend, host_memory)
        out[recipe.name] = _baseline_path(recipe, workdir, limit, batch_size, backend)
    return out


def _baseline_path(recipe: Recipe, workdir: Path, limit: int | None, batch_size: int, backend: str) -> Path:
    key = _sha(suite(recipe, limit, batch_size, backend))[:16]
    return Layout(workdir, recipe.name).baselines / base_key(recipe) / f"{key}.json"


def _evaluate(
    recipe: Recipe,
    layout: Layout,
    recipe_dir: Path,
    device: str,
    limit: int | None,
    batch_size: int,
    force: bool,
    allow_regression: bool,
    backend: str,
    host_memory: int | None = None,
) -> EvalResult:
    workdir, folder, build_json = layout.workdir, layout.folder, layout.build_json
    vision = [t for t in recipe.eval.tasks if TASKS[t].harness == "lmms-eval"]
    if vision:  # a missing judge key or token fails here, not after hours of perplexity
        from zoo.evaluation.vision import check

        check(vision)
    from zoo.quantize.run import check_recipe

    build = BuildRecord.checked(layout)  # a truncated or altered checkpoint stops here, not in a loader
    check_recipe(recipe, build, folder)
    dev = _device(device)
    from zoo.evaluation.harness import check_backend

    if backend == "vllm" and recipe.format == "adapter":
        raise UsageError(f"{recipe.name} is a LoRA adapter on an NF4 base, which --backend vllm does not run; fix: --backend hf")
    check_backend(backend)
    if host_memory is not None:
        refuse_packed_offload(layout.model)
    spec = suite(recipe, limit, batch_size, backend)
    out = layout.eval_json
    done = None if force else EvalRecord.read(layout)
    build_sha, suite_sha = sha256_file(build_json), _sha(spec)
    record: EvalRecord
    fresh = layout.folder / f".{layout.samples.name}.new"  # moved over the old one only with eval.json
    if done and done.build_sha256 == build_sha and done.suite_sha256 == suite_sha:
        log.info("%s: already evaluated (%s), skipping; --force re-runs", recipe.name, out)
        record = done
        status = "skipped"
    else:
        base = baseline(recipe, workdir, recipe_dir, dev, limit, batch_size, force, backend, host_memory)
        offload = layout.offload if host_memory is not None else None
        try:
            result = measure(layout.model, recipe, recipe_dir, dev, limit, batch_size, backend, fresh, host_memory, offload)
        except BaseException:
            fresh.unlink(missing_ok=True)
            raise
        record = EvalRecord(
            name=recipe.name,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_sha256=build_sha,
            suite_sha256=suite_sha,
            recipe_sha256=build.recipe_sha256,
            suite=spec,
            limit=limit,
            batch_size=batch_size,
            seed=0,
            dtype=result.dtype,
            device=result.device,
            duration_s=result.duration_s,
            metrics=result.metrics,
            details=result.details,
            baseline=Baseline(base=base.base, metrics=base.metrics),
            recovery=recovery(result.metrics, base.metrics),
            samples_sha256=result.details.get("samples_sha256"),
        )
        status = "evaluated"
    failed = gate(recipe, record.recovery)
    verdict = Gate(min_recovery=recipe.eval.min_recovery, passed=not failed, failed=failed)
    if status == "evaluated" or record.gate != verdict:  # a skipped, unchanged eval leaves eval.json as it was
        record = record.model_copy(update={"gate": verdict})
        record.write(layout)
    if status == "evaluated":  # the samples of this very eval, or none (a suite without lm-eval tasks)
        if fresh.exists():
            fresh.replace(layout.samples)
        else:
            layout.samples.unlink(missing_ok=True)
    if failed and not allow_regression:
        raise GateError(
            f"{recipe.name} failed its recovery gate: {'; '.join(failed)}; fix: investigate, or pass --allow-regression"
        )
    return EvalResult(recipe.name, status, out, record.metrics, record.recovery, failed)


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise NeedsAcceleratorError("--device cuda but no CUDA device is visible; fix: check the driver / CUDA_VISIBLE_DEVICES")
    return device
