"""The build stage: recipe -> quantized checkpoint in ``<workdir>/<name>/model`` + ``build.json``.

The checkpoint is written under a temporary name; only when it is complete are the old checkpoint and
its ``build.json`` replaced (renames, old removed last), so an interrupted ``--force`` rebuild leaves
the previous good build usable. ``build.json``'s presence with the recipe's hash and matching files
means the build is finished and a rerun skips it. One process builds a recipe at a time (the recipe
lock). Stage timings, peak memory and every output file's sha256 go into the record, those of a native
method's ``packed/`` checkpoint too (``packed_files``; ``total_bytes`` counts the form a release publishes).
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from zoo import loader as base_loader
from zoo import machine as manifest
from zoo.device import resolve as resolve_device
from zoo.errors import NotBuildableError
from zoo.families import FAMILIES
from zoo.lock import stage_lock
from zoo.methods import METHODS
from zoo.methods.base import BuildContext
from zoo.pipeline.options import RunOptions
from zoo.recipe import Recipe
from zoo.records import BuildRecord, file_entries, is_built, recipe_sha256, remember_verified
from zoo.workdir import Layout, check_disk, clear_partials, disk_full, is_disk_full, normal_permissions, swap_in

log = logging.getLogger(__name__)
TINY_LIMIT_B = 1.0  # bases under a billion parameters build on a CPU without --device cpu
# the recipe's hash and check live beside the records (zoo.records.recipe); named here for older imports
__all__ = ["BuildResult", "build", "build_stage"]


@dataclass(frozen=True)
class BuildResult:
    name: str
    status: Literal["built", "skipped"]
    model_dir: Path
    build_json: Path
    total_bytes: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "model_dir": str(self.model_dir), "build_json": str(self.build_json)}


def _heavy(recipe: Recipe) -> str | None:
    """Why a CPU build of this recipe needs ``--device cpu`` said out loud (None: a tiny base builds anywhere)."""
    if recipe.base.parameters < TINY_LIMIT_B:
        return None
    return (
        f"{recipe.name} needs a GPU: its base has {recipe.base.parameters * 2:.0f} GB of bf16 weights (calibrated one "
        "decoder layer at a time on the GPU)"
    )


def _quantizer(spec: Any) -> Any:
    module, func = spec.builder.split(":")
    return getattr(importlib.import_module(module), func)


def build_stage(recipe: Recipe, layout: Layout, options: RunOptions) -> BuildResult:
    """Quantize ``recipe`` into ``layout``; skips a finished identical build unless ``options.force``."""
    with stage_lock(layout, "build", options.wait):
        try:
            return _build(recipe, layout, options)
        except Exception as e:
            if is_disk_full(e):
                raise disk_full(layout.folder, f"{recipe.name}'s checkpoint") from None
            raise
        finally:
            shutil.rmtree(layout.offload, ignore_errors=True)


def build(
    recipe: Recipe,
    workdir: Path,
    recipe_dir: Path,
    device: str = "auto",
    force: bool = False,
    host_memory: int | None = None,
    wait: bool = False,
) -> BuildResult:
    """``build_stage`` by keywords, for scripts and tests that name a workdir rather than a layout."""
    options = RunOptions(recipes=recipe_dir, device=device, force=force, host_memory=host_memory, wait=wait)
    return build_stage(recipe, Layout(workdir, recipe.name), options)


def _needed_bytes(recipe: Recipe, recipe_dir: Path, host_memory: int | None) -> float:
    """What a build writes at most: the checkpoint (never larger than the 16-bit base), plus offloaded
    weights past ``host_memory``, with 10% slack."""
    if recipe.base.builtin:
        from zoo.tiny.bases import HERE

        weights = float((HERE / "tiny-llama3" / "model.safetensors").stat().st_size)
    else:
        weights = recipe.base.parameters * 1e9 * 2
    offload = max(0.0, weights - host_memory) if host_memory is not None else 0.0
    return (weights + offload) * 1.1


def _build(recipe: Recipe, layout: Layout, options: RunOptions) -> BuildResult:
    start = time.time()
    recipe_dir, host_memory = options.recipes, options.host_memory
    folder = layout.folder
    spec = METHODS.get(recipe.method)
    if not spec.buildable:
        buildable = ", ".join(m for m in METHODS.names() if METHODS.get(m).buildable)
        raise NotBuildableError(
            f"{recipe.name}: method {recipe.method!r} is in the catalog but not implemented yet; fix: pick a recipe of "
            f"a buildable method ({buildable}); `zoo list` shows which"
        )
    done = None if options.force else is_built(recipe, layout)
    if done:
        log.info("%s: already built (%s), skipping; --force rebuilds", recipe.name, layout.build_json)
        return BuildResult(recipe.name, "skipped", layout.model, layout.build_json, done.total_bytes, 0.0)
    dev = resolve_device(options.device, _heavy(recipe), hide=True)  # llm-compressor computes on any visible GPU
    check_disk(folder, _needed_bytes(recipe, recipe_dir, host_memory), f"{recipe.name}'s checkpoint")
    clear_partials(folder)
    timings: dict[str, float] = {}

    def lap(stage: str, t0: float) -> float:
        timings[stage] = round(time.time() - t0, 3)
        log.info("%s: %s done in %.1fs", recipe.name, stage, timings[stage])
        return time.time()

    import torch

    t = time.time()
    log.info("%s: loading base %s", recipe.name, recipe.base_name)
    source = base_loader.resolve(recipe, recipe_dir)
    family = FAMILIES.get(recipe.family)

    def load_model() -> Any:
        t0 = time.time()
        model = base_loader.load_model(source, family, host_memory, layout.offload)
        lap("load", t0)
        return model

    out = Path(tempfile.mkdtemp(prefix=".model.partial-", dir=folder))
    try:
        processor = base_loader.load_processor(source, family)
        t = lap("processor", t)
        calibration = None
        if spec.calibrated:
            from zoo.data.calibration import calibration as draw_calibration

            tokenizer = getattr(processor, "tokenizer", processor)
            calibration = draw_calibration(recipe.calibration, tokenizer, recipe_dir)
            t = lap("calibration", t)
        torch.manual_seed(recipe.calibration.seed)
        log.info("%s: quantizing with %s on %s", recipe.name, spec.title, dev)
        ctx = BuildContext(
            recipe,
            recipe.params,
            family,
            source.path,
            load_model,
            processor,
            calibration,
            dev,
            out,
            recipe_dir,
            layout.train,
            host_memory,
        )
        method_info = _quantizer(spec)(ctx)
        del ctx
        t = lap("quantize", t)
        timings["quantize"] = round(timings["quantize"] - timings.get("load", 0.0), 3)
        from zoo import __version__
        from zoo.quantize.provenance import stamp

        copied = base_loader.copy_license_files(source.path, out)
        if copied:
            log.info("%s: carried the base's %s into the release", recipe.name, ", ".join(copied))

        base_id = source.identity
        provenance = {
            "version": __version__,
            "recipe": recipe.name,
            "recipe_sha256": recipe_sha256(recipe),
            "method": recipe.method,
            "base": str(base_id.get("repo_id") or base_id.get("builtin") or base_id.get("path") or recipe.base_name),
            "base_revision": str(base_id.get("commit") or base_id.get("weights_sha256") or ""),
        }  # fmt: skip
        from zoo.packed.store import adopt, partial_for  # a native method's packed checkpoint (#32)

        for folder_out in (out, partial_for(out)):  # the packed form is what a release publishes: it says so too
            if folder_out.is_dir():
                stamp(folder_out, provenance)
        normal_permissions(out)  # safetensors writes 0600; the rest of the checkpoint is 0644
        files = file_entries(out)
        t = lap("hash", t)
        shutil.rmtree(layout.offload, ignore_errors=True)
        total = sum(f.size for f in files)
        versions = manifest.versions()
        record = BuildRecord(
            name=recipe.name,
            zoo_version=versions["zoo"] or "",
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            recipe_sha256=recipe_sha256(recipe),
            recipe=recipe.model_dump(mode="json"),
            base=source.identity,
            base_gating=base_loader.gating(source.path),
            method={"name": spec.name, "format": recipe.format, **method_info},
            seed=recipe.calibration.seed,
            calibration=calibration.identity if calibration else None,
            device=dev,
            host_memory_limit_bytes=host_memory,
            versions=versions,
            timings_s={**timings, "total": round(time.time() - start, 3)},
            peak_host_rss_bytes=manifest.peak_host_rss(),
            gpu=manifest.gpu(),
            total_bytes=total,
            files=files,
        )
        # The swap: the old record goes first (a crash now leaves "not built", never an old record over a
        # new checkpoint), then two renames, then the new record. An old eval.json stays: it names the old
        # build's hash, so eval, card and push see it is stale.
        layout.build_json.unlink(missing_ok=True)
        swap_in(out, layout.model)
        adopt(out, layout.model)  # -> <name>/packed, or no stale one left
        packed = file_entries(layout.packed) if layout.packed.is_dir() else ()
        record = record.model_copy(update={"packed_files": packed})
        total = sum(f.size for f in record.published(layout)[1])  # what a release publishes
        record = record.model_copy(update={"total_bytes": total})
        record.write(layout)
        remember_verified(layout, files, packed)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(layout.train, ignore_errors=True)  # resumable training state, done with
    log.info("%s: built %s (%.1f MB%s) in %.1fs", recipe.name, layout.model, record.model_bytes / 1e6,
             f"; packed {record.packed_bytes / 1e6:.1f} MB" if record.packed_bytes is not None else "",
             time.time() - start)  # fmt: skip
    return BuildResult(recipe.name, "built", layout.model, layout.build_json, total, round(time.time() - start, 3))
