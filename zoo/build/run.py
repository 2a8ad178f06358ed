"""The build stage: recipe -> quantized checkpoint in ``<workdir>/<name>/model`` + ``build.json``.

The checkpoint is written under a temporary name and renamed when complete; ``build.json`` is
written last, so its presence with the recipe's hash means the build is finished and a rerun skips
it (``force`` rebuilds). Stage timings, peak memory and every output file's sha256 go into it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from zoo.build import load as base_loader
from zoo.build import manifest
from zoo.errors import ZooError
from zoo.families import FAMILIES
from zoo.methods import METHODS
from zoo.methods.base import BuildContext
from zoo.recipe import Recipe
from zoo.workdir import clear_partials, file_manifest, read_json, staging, write_json

log = logging.getLogger(__name__)
TINY_LIMIT_B = 1.0  # bases under a billion parameters build on a CPU without --device cpu


class NotBuildableError(ZooError):
    exit_code = 3


class NeedsAcceleratorError(ZooError):
    exit_code = 4


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


def recipe_sha256(recipe: Recipe) -> str:
    blob = json.dumps(recipe.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def is_built(recipe: Recipe, folder: Path) -> dict[str, Any] | None:
    """The finished build record for this exact recipe, if the checkpoint is still intact."""
    record = read_json(folder / "build.json")
    if not record or record.get("recipe_sha256") != recipe_sha256(recipe):
        return None
    model = folder / "model"
    for f in record.get("files", []):
        p = model / f["path"]
        if not p.is_file() or p.stat().st_size != f["size"]:
            return None
    return record


def resolve_device(recipe: Recipe, device: str) -> str:
    if device not in ("auto", "cuda", "cpu"):
        raise ZooError(f"unknown device {device!r}; fix: use auto, cuda or cpu")
    if device == "cpu":
        if "torch" not in sys.modules:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # llm-compressor computes on any visible accelerator
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise NeedsAcceleratorError("--device cuda but no CUDA device is visible; fix: check the driver / CUDA_VISIBLE_DEVICES")
    if recipe.base.parameters >= TINY_LIMIT_B:
        gb = recipe.base.parameters * 2
        raise NeedsAcceleratorError(
            f"{recipe.name} needs a GPU: its base has {gb:.0f} GB of bf16 weights (calibrated one decoder layer "
            "at a time on the GPU) and no CUDA device is visible; fix: run on a GPU machine, or pass --device cpu "
            "to force a very slow CPU build"
        )
    return "cpu"


def _quantizer(spec: Any) -> Any:
    module, func = spec.builder.split(":")
    return getattr(importlib.import_module(module), func)


def build(
    recipe: Recipe,
    workdir: Path,
    recipe_dir: Path,
    device: str = "auto",
    force: bool = False,
    host_memory: int | None = None,
) -> BuildResult:
    """Quantize ``recipe`` into ``workdir/<name>``; skips a finished identical build unless ``force``."""
    start = time.time()
    folder = workdir / recipe.name
    spec = METHODS.get(recipe.method)
    if not spec.buildable:
        buildable = ", ".join(m for m in METHODS.names() if METHODS.get(m).buildable)
        raise NotBuildableError(
            f"{recipe.name}: method {recipe.method!r} is in the catalog but not implemented yet; fix: pick a recipe of "
            f"a buildable method ({buildable}); `zoo list` shows which"
        )
    done = None if force else is_built(recipe, folder)
    if done:
        log.info("%s: already built (%s), skipping; --force rebuilds", recipe.name, folder / "build.json")
        return BuildResult(recipe.name, "skipped", folder / "model", folder / "build.json", done["total_bytes"], 0.0)
    dev = resolve_device(recipe, device)
    base_loader.check_disk(folder.parent, recipe.base.parameters * 1e9 * 2 * 1.1)
    clear_partials(folder)
    (folder / "build.json").unlink(missing_ok=True)
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
        model = base_loader.load_model(source, family, host_memory, folder / ".offload")
        lap("load", t0)
        return model

    with staging(folder / "model") as out:
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
            recipe, family, source.path, load_model, processor, calibration, dev, out, recipe_dir, folder / "train"
        )
        method_info = _quantizer(spec)(ctx)
        del ctx
        t = lap("quantize", t)
        timings["quantize"] = round(timings["quantize"] - timings.get("load", 0.0), 3)
        files = file_manifest(out)
        t = lap("hash", t)
    shutil.rmtree(folder / ".offload", ignore_errors=True)
    total = sum(f["size"] for f in files)
    record = {
        "name": recipe.name,
        "zoo_version": manifest.versions()["zoo"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe_sha256": recipe_sha256(recipe),
        "recipe": recipe.model_dump(mode="json"),
        "base": source.identity,
        "method": {"name": spec.name, "format": recipe.format, **method_info},
        "seed": recipe.calibration.seed,
        "calibration": calibration.identity if calibration else None,
        "device": dev,
        "host_memory_limit_bytes": host_memory,
        "versions": manifest.versions(),
        "timings_s": {**timings, "total": round(time.time() - start, 3)},
        "peak_host_rss_bytes": manifest.peak_host_rss(),
        "gpu": manifest.gpu(),
        "total_bytes": total,
        "files": files,
    }
    write_json(folder / "build.json", record)
    shutil.rmtree(folder / "train", ignore_errors=True)  # resumable training state, done with
    log.info("%s: built %s (%.1f MB) in %.1fs", recipe.name, folder / "model", total / 1e6, time.time() - start)
    return BuildResult(recipe.name, "built", folder / "model", folder / "build.json", total, round(time.time() - start, 3))
