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
    from zoo.build.manifest import package_versions

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
) -> Measurement:
    """Every metric of the recipe's suite on the model in ``model_dir``; lm-eval's per-item outputs go to
    ``samples_to`` when given (their sha256 in ``details["samples_sha256"]``)."""
    import torch
    import transformers

    from zoo.data import DATASETS
    from zoo.data.calibration import token_ids
    from zoo.data.text import load_text
    from zoo.evaluation.perplexity import C4_WINDOWS, perplexity
    from zoo.progress import reporter

    start = time.time()
    family = FAMILIES.get(recipe.family)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    from zoo.lora.load import is_adapter

    if is_adapter(model_dir):  # QLoRA / IR-QLoRA: the quantized base plus the adapter, as users load it
        from zoo.build.load import resolve
        from zoo.lora.load import load as load_adapter

        model = load_adapter(model_dir, resolve(recipe, recipe_dir).path, device, dtype).base_model.model
    else:
        auto = getattr(transformers, family.auto_class)
        model = auto.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False).to(device).eval()
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
        ppl = perplexity(model, ids, seqlen, device, cap, reporter(f"{model_dir.parent.name} ppl {name}"), batch_size)
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

        res = evaluate(model, tokenizer, text_tasks, _task_data(recipe, recipe_dir), limit, batch_size, backend, model_dir)
        metrics.update(res["metrics"])
        details["tasks"] = res["tasks"]
        if samples_to is not None and res["samples"]:
            from zoo.evaluation.harness import write_samples

            details["samples_sha256"] = write_samples(samples_to, res["samples"])
    if vision_tasks:
        from zoo.evaluation.vision import evaluate as evaluate_vision

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


def _base_key(recipe: Recipe) -> str:
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
) -> BaselineRecord:
    from zoo.build.load import resolve

    key = _sha(suite(recipe, limit, batch_size, backend))[:16]
    path = Layout(workdir, recipe.name).baselines / _base_key(recipe) / f"{key}.json"
    cached = None if force else BaselineRecord.read_from(path)
    if cached:
        log.info("%s: 16-bit baseline from %s", recipe.name, path)
        return cached
    log.info("%s: measuring the 16-bit base %s", recipe.name, recipe.base_name)
    source = resolve(recipe, recipe_dir)
    measured = measure(source.path, recipe, recipe_dir, device, limit, batch_size, backend)
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
) -> EvalResult:
    """Measure the build and its base into eval.json (atomic), holding the recipe's lock throughout."""
    layout = Layout(workdir, recipe.name)
    with stage_lock(layout, "eval", wait):
        return _evaluate(recipe, layout, recipe_dir, device, limit, batch_size, force, allow_regression, backend)


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
) -> EvalResult:
    workdir, folder, build_json = layout.workdir, layout.folder, layout.build_json
    vision = [t for t in recipe.eval.tasks if TASKS[t].harness == "lmms-eval"]
    if vision:  # a missing judge key or token fails here, not after hours of perplexity
        from zoo.evaluation.vision import check

        check(vision)
    from zoo.build.run import check_recipe

    build = BuildRecord.checked(layout)  # a truncated or altered checkpoint stops here, not in a loader
    check_recipe(recipe, build, folder)
    dev = _device(device)
    from zoo.evaluation.harness import check_backend

    if backend == "vllm" and recipe.format == "adapter":
        raise UsageError(f"{recipe.name} is a LoRA adapter on an NF4 base, which --backend vllm does not run; fix: --backend hf")
    check_backend(backend)
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
        base = baseline(recipe, workdir, recipe_dir, dev, limit, batch_size, force, backend)
        try:
            result = measure(layout.model, recipe, recipe_dir, dev, limit, batch_size, backend, fresh)
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
