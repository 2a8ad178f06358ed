"""The eval stage: a built checkpoint and its 16-bit base, measured the same way, and the gate.

Reads ``build.json`` (so it runs alone after ``zoo build``) and writes ``eval.json`` beside it. The
base is measured once per base and suite and cached under ``<workdir>/_baselines/``; online, a base
another machine measured comes from the Hub store of baselines instead (``zoo.publish.baselines``). Recovery is
quantized/base for accuracies and base/quantized for perplexities, in percent. A recipe's
``eval.min_recovery`` is the gate: any metric below it fails the stage unless regressions are allowed.

The checkpoint measured is the one a release publishes (#32): a native method's packed checkpoint
(``packed/``) when the build has one and the recipe publishes it, else ``model/``; eval.json says which
(``form``). The packed one decodes to the same weights, so its numbers are the fake form's; measuring it
proves that the checkpoint users download runs. vLLM does not run zoo's packed format, so ``--backend
vllm`` measures ``model/`` (and says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.device import resolve as resolve_device
from zoo.errors import GateError, MissingExtraError, TokenError, UsageError, ZooError
from zoo.evaluation.measure import free, input_device, load, measure, refuse_packed_offload
from zoo.lock import stage_lock
from zoo.pipeline.options import RunOptions
from zoo.recipe import Recipe
from zoo.records import Baseline, BaselineRecord, BuildRecord, EvalRecord, Gate, check_recipe
from zoo.tasks import TASKS
from zoo.workdir import Layout, sha256_file

if TYPE_CHECKING:
    from zoo.publish.baselines import Location

__all__ = [
    "EvalResult", "base_key", "baseline", "eval_stage", "evaluate", "free", "gate", "input_device", "load",
    "measure", "measure_baselines", "recovery", "refuse_packed_offload", "suite",
]  # fmt: skip
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    name: str
    status: str  # "evaluated" or "skipped"
    eval_json: Path
    metrics: dict[str, float | None]
    recovery: dict[str, float]
    gate_failed: tuple[str, ...]
    form: str = "model"  # which checkpoint was measured: "model" (model/) or "packed" (packed/)


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


def base_key(recipe: Recipe) -> str:
    """The folder name of a base's cached baselines."""
    b = recipe.base
    raw = b.builtin or (f"{b.repo_id}@{b.revision}" if b.repo_id else f"path-{b.path}")
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", raw)


def _baseline_path(recipe: Recipe, workdir: Path, options: RunOptions) -> Path:
    key = _sha(suite(recipe, options.limit, options.batch_size, options.backend))[:16]
    return Layout(workdir, recipe.name).baselines / base_key(recipe) / f"{key}.json"


def baseline(recipe: Recipe, layout: Layout, options: RunOptions, strict: bool = False) -> BaselineRecord:
    """The 16-bit base measured with the recipe's suite (``options.device`` resolved): from the local cache,
    else from the Hub store of baselines (``zoo.publish.baselines``; not when offline), else measured here,
    unless ``options.force``. ``options.share_baseline`` puts it in the store when the store lacks it; a
    baseline that cannot be shared is a warning (a release goes on, and adds to a store only when one
    exists), or with ``strict`` (``zoo baseline --push``, which asked for nothing else, and makes the store)
    an error, before any measuring where it can be known then."""
    from zoo.loader import resolve
    from zoo.publish import baselines as store

    spec = suite(recipe, options.limit, options.batch_size, options.backend)
    path = _baseline_path(recipe, layout.workdir, options)
    shared = store.location(recipe, spec, options.recipes)
    share = _sharing(recipe, shared, strict) if options.share_baseline else None
    cached = None if options.force else BaselineRecord.read_from(path)
    if cached:
        log.info("%s: 16-bit baseline from %s", recipe.name, path)
        if share is not None and store.fetch_baseline(share) is None:
            _share(recipe, share, cached, spec, strict)
        return cached
    fetched = None if options.force or shared is None else store.fetch_baseline(shared)
    if fetched is not None and shared is not None:  # checked against the base commit and the suite it is filed under
        log.info("%s: 16-bit baseline from the Hub store %s, not measured here", recipe.name, shared.repo_id)
        fetched = fetched.model_copy(update={"source": f"hub:{shared.repo_id}"})
        fetched.write_to(path)
        return fetched
    log.info("%s: measuring the 16-bit base %s", recipe.name, recipe.base_name)
    source = resolve(recipe, options.recipes)
    offload = layout.offload if options.host_memory is not None else None
    measured = measure(source.path, recipe, options, None, offload)
    result = BaselineRecord(base=source.identity, source="measured", **measured.model_dump())
    result.write_to(path)  # kept here first: a failed upload is re-tried from the cache, not re-measured
    if share is not None:
        _share(recipe, share, result, spec, strict)
    return result


def _sharing(recipe: Recipe, shared: Location | None, strict: bool) -> Location | None:
    """Where to share the baseline, or None (saying why) when it cannot be: offline, a local base, no token."""
    from zoo.publish import baselines as store
    from zoo.publish.hub import offline_mode

    error: type[ZooError]
    if shared is None:
        why, error, fix = store.unshareable(recipe), UsageError, "run without --push"
        if offline_mode():
            fix = "unset HF_HUB_OFFLINE (or set it to 0), or run without --push"
    elif not store.has_token():
        why, error, fix = "no Hugging Face token was found", TokenError, "set HF_TOKEN to a token that may write the store"
    else:
        return shared
    if strict:
        raise error(f"{recipe.name}: the 16-bit baseline cannot be shared: {why}; fix: {fix}")
    log.info("%s: the 16-bit baseline is not shared: %s", recipe.name, why)
    return None


def _share(recipe: Recipe, shared: Location, record: BaselineRecord, spec: dict[str, Any], strict: bool) -> None:
    from zoo.publish import baselines as store

    try:
        store.publish_baseline(shared, record, spec, create=strict)
    except ZooError as e:
        if strict:
            raise
        log.warning("%s: the 16-bit baseline is kept here but not shared: %s", recipe.name, str(e).splitlines()[0])


def recovery(metrics: dict[str, float | None], base: dict[str, float | None]) -> dict[str, float]:
    """Every key's recovery in %, by the Metric table's direction (``zoo.variant.metrics.recovery``)."""
    from zoo.variant.metrics import recovery as by_direction

    return by_direction(metrics, base)


def gate(recipe: Recipe, rec: dict[str, float]) -> tuple[str, ...]:
    floor = recipe.eval.min_recovery
    if floor is None:
        return ()
    return tuple(f"{k} {v:.1f}% < {floor:g}%" for k, v in sorted(rec.items()) if v < floor)


def eval_stage(recipe: Recipe, layout: Layout, options: RunOptions) -> EvalResult:
    """Measure the build and its base into eval.json (atomic), holding the recipe's lock throughout.
    ``options.host_memory``: bytes of host RAM for each model's weights; the rest is offloaded to disk inside
    the recipe's folder (removed after). Placement never changes a number, so it is not part of the suite."""
    with stage_lock(layout, "eval", options.wait):
        return _evaluate(recipe, layout, options)


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
    """``eval_stage`` by keywords, for scripts and tests that name a workdir rather than a layout."""
    options = RunOptions(
        recipes=recipe_dir, device=device, limit=limit, batch_size=batch_size, force=force,
        allow_regression=allow_regression, backend=backend, wait=wait, host_memory=host_memory,
    )  # fmt: skip
    return eval_stage(recipe, Layout(workdir, recipe.name), options)


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
    share: bool = False,
) -> dict[str, Path]:
    """Each recipe's 16-bit baseline into the cache ``zoo eval`` reads (measured once per base and suite),
    so a release measures a base before its variants, not once per variant; ``share``: into the Hub store
    of baselines too, for every other machine (``zoo baseline --push``). Returns where each is."""
    options = RunOptions(
        recipes=recipe_dir, device=resolve_device(device), limit=limit, batch_size=batch_size, backend=backend,
        host_memory=host_memory, wait=wait, share_baseline=share,
    )  # fmt: skip
    out: dict[str, Path] = {}
    for recipe in recipes:
        layout = Layout(workdir, recipe.name)
        with stage_lock(layout, "eval", wait):
            baseline(recipe, layout, options, strict=share)
        out[recipe.name] = _baseline_path(recipe, workdir, options)
    return out


def published_form(build: BuildRecord, layout: Layout, backend: str) -> tuple[str, Path]:
    """Which checkpoint the eval measures, and its folder: the one a release publishes, except that vLLM
    does not run zoo's packed format (it then measures model/, which decodes to the same weights)."""
    folder, _ = build.published(layout)
    if folder == layout.model:
        return "model", folder
    if backend != "hf":
        log.info("%s: --backend %s measures model/, not the packed checkpoint a release publishes", layout.name, backend)
        return "model", layout.model
    return "packed", folder


def _evaluate(recipe: Recipe, layout: Layout, options: RunOptions) -> EvalResult:
    vision = [t for t in recipe.eval.tasks if TASKS[t].harness == "lmms-eval"]
    if vision:  # a missing judge key or token fails here, not after hours of perplexity
        from zoo.evaluation.vision import check

        check(vision)
    build = BuildRecord.checked(layout)  # a truncated or altered checkpoint stops here, not in a loader
    check_recipe(recipe, build, layout.folder)
    options = options.but(device=resolve_device(options.device))
    from zoo.evaluation.harness import check_backend

    if options.backend == "vllm" and recipe.format == "adapter":
        raise UsageError(f"{recipe.name} is a LoRA adapter on an NF4 base, which --backend vllm does not run; fix: --backend hf")
    if any(TASKS[t].harness == "lm-eval" for t in recipe.eval.tasks):
        check_backend(options.backend)  # lm-eval's vLLM engine runs in this process
    elif options.backend == "vllm":
        from zoo.serving import vllm_process

        if vllm_process.python() is None:  # the perplexities run vLLM in a child: its python is all they need
            raise MissingExtraError(
                f"--backend vllm needs vLLM, which is not installed here; fix: pip install vllm, or set {vllm_process.ENV} "
                "to a venv's python that has it (docs/serving.md)"
            )
    form, model_dir = published_form(build, layout, options.backend)
    if options.host_memory is not None:
        refuse_packed_offload(model_dir)
    spec = suite(recipe, options.limit, options.batch_size, options.backend)
    done = None if options.force else EvalRecord.read(layout)
    build_sha, suite_sha = sha256_file(layout.build_json), _sha(spec)
    record: EvalRecord
    fresh = layout.folder / f".{layout.samples.name}.new"  # moved over the old one only with eval.json
    if done and done.build_sha256 == build_sha and done.suite_sha256 == suite_sha and (done.form or "model") == form:
        log.info("%s: already evaluated (%s), skipping; --force re-runs", recipe.name, layout.eval_json)
        record, status = done, "skipped"
    else:
        record, status = _measured(recipe, layout, options, build, model_dir, fresh, spec, form), "evaluated"
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
    if failed and not options.allow_regression:
        raise GateError(
            f"{recipe.name} failed its recovery gate: {'; '.join(failed)}; fix: investigate, or pass --allow-regression"
        )
    return EvalResult(recipe.name, status, layout.eval_json, record.metrics, record.recovery, failed, form)


def _measured(
    recipe: Recipe,
    layout: Layout,
    options: RunOptions,
    build: BuildRecord,
    model_dir: Path,
    fresh: Path,
    spec: dict[str, Any],
    form: str,
) -> EvalRecord:
    """The base (cached) and the build measured, as the record to write."""
    base = baseline(recipe, layout, options)
    offload = layout.offload if options.host_memory is not None else None
    try:
        result = measure(model_dir, recipe, options, fresh, offload)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
    return EvalRecord(
        name=recipe.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_sha256=sha256_file(layout.build_json),
        suite_sha256=_sha(spec),
        recipe_sha256=build.recipe_sha256,
        suite=spec,
        limit=options.limit,
        batch_size=options.batch_size,
        seed=0,
        dtype=result.dtype,
        device=result.device,
        duration_s=result.duration_s,
        metrics=result.metrics,
        details=result.details,
        baseline=Baseline(base=base.base, metrics=base.metrics, source=base.source),
        recovery=recovery(result.metrics, base.metrics),
        samples_sha256=result.details.get("samples_sha256"),
        form=form,
    )
