"""``zoo rehearse``: each recipe through build -> eval -> card -> push on a CPU, on its shrunk base.

The rehearsal recipe is the recipe itself with four things changed: the base is the shrunk copy of
the real one (``shrink.py``), calibration draws at most 4 windows of 128 tokens, evaluation windows
are 128 tokens with ``--limit`` items per task and no recovery gate (random weights recover nothing),
and training methods run 2 steps. Everything else - the method, its parameters, the dataset ids,
configs and splits that calibration and evaluation load, the card, the push - is what ``zoo release``
runs. Stages write under ``<workdir>/_rehearsal/``, never beside real builds, and the push is a dry
run unless asked for, which is refused against huggingface.co so a rehearsal never publishes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.pipeline.options import RunOptions
from zoo.pipeline.stages import REHEARSED
from zoo.recipe import Recipe
from zoo.workdir import Layout

log = logging.getLogger(__name__)
STAGES = ("base", *REHEARSED)  # the shrunk base's copy, then the release's stages a rehearsal runs
# Training lengths a rehearsal shortens, by parameter name (whichever the method has).
QUICK: dict[str, Any] = {"steps": 2, "save_every": 1, "batch_size": 2, "max_seq_len": 64}
CAL_SAMPLES, SEQLEN = 4, 128


@dataclass(frozen=True)
class Rehearsal:
    name: str
    stages: dict[str, str] = field(default_factory=dict)  # stage -> "ok", "skipped" or "failed"
    error: str | None = None  # the failed stage's one-line error
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "stages": self.stages, "error": self.error, "seconds": self.seconds}


def rehearsal_root(workdir: Path) -> Path:
    return Layout(workdir, "_").rehearsal


def rehearsal_recipe(recipe: Recipe, base: Path | None) -> Recipe:
    """The recipe as rehearsed: on ``base`` (None: its own built-in base), with small data and steps."""
    updates: dict[str, Any] = {}
    if base is not None:
        cfg = json.loads((base / "config.json").read_text())
        text = cfg.get("text_config", cfg)
        n = json.loads((base / "rehearsal.json").read_text())["parameters"]
        updates["base"] = recipe.base.model_copy(
            update={
                "repo_id": None,
                "revision": None,
                "path": str(base.absolute()),
                "parameters": n / 1e9,
                "hidden_size": text["hidden_size"],
                "intermediate_size": text["intermediate_size"],
            }
        )
    cal = recipe.calibration
    updates["calibration"] = cal.model_copy(update={"samples": min(cal.samples, CAL_SAMPLES), "seqlen": min(cal.seqlen, SEQLEN)})
    updates["eval"] = recipe.eval.model_copy(update={"seqlen": min(recipe.eval.seqlen, SEQLEN), "min_recovery": None})
    quick = {k: v for k, v in QUICK.items() if k in type(recipe.params).model_fields}
    updates["params"] = recipe.params.model_copy(update=quick)
    return recipe.model_copy(update=updates)


def _base_folder(recipe: Recipe, root: Path) -> Path | None:
    """The shrunk base's folder (made on first use); None for built-in bases, already tiny."""
    from zoo.families import FAMILIES
    from zoo.rehearse.shrink import shrunk_base

    b = recipe.base
    if b.builtin:
        return None
    if b.repo_id is None:
        raise UsageError(
            f"{recipe.name}: rehearsal shrinks Hub bases; a local base.path is not rehearsed; fix: try it with zoo build"
        )
    key = f"{b.repo_id}@{b.revision}".replace("/", "--")
    return shrunk_base(b.repo_id, b.revision, root / "bases" / key, FAMILIES.get(recipe.family).auto_class)


def check_push_target(push: bool) -> None:
    """A real push only to a Hub other than huggingface.co (a local Hub-protocol server)."""
    if not push:
        return
    from zoo.publish import hub

    if "huggingface.co" in hub.endpoint():
        raise UsageError(
            "zoo rehearse --push would publish random-weight models to huggingface.co; "
            "fix: point HF_ENDPOINT at a local Hub server, or leave out --push (a dry run)"
        )


def rehearse_one(recipe: Recipe, catalog: list[Recipe], workdir: Path, recipe_dir: Path, limit: int, push: bool) -> Rehearsal:
    """The rehearsal recipe through the release's stages (``zoo.pipeline.stages.REHEARSED``) on a CPU, each
    redone (``force``), the push a dry run unless ``push``; any exception is that stage's failure."""
    from zoo.pipeline import stages as pipeline

    work = rehearsal_root(workdir) / "work"
    start = time.time()
    try:
        base = _base_folder(recipe, rehearsal_root(workdir))
    except Exception as e:
        return _failed(recipe, {}, "base", e, start)
    stages: dict[str, str] = {"base": "skipped" if base is None else "ok"}
    rehearsed = rehearsal_recipe(recipe, base)
    options = RunOptions(
        recipes=recipe_dir, device="cpu", limit=limit, force=True, dry_run=not push, siblings=tuple(catalog),
        from_hub=False,  # a rehearsal's card must not depend on what the Hub holds today
    )  # fmt: skip
    done = pipeline.run(rehearsed, Layout(work, rehearsed.name), options, pipeline.REHEARSED, stop_on=(Exception,))
    for name, result in done.results.items():
        stages[name] = "ok" if name != "push" or result.compared else "ok (offline: not compared)"
    if done.error is not None:
        return _failed(recipe, stages, str(done.failed), done.error, start)
    return Rehearsal(recipe.name, stages, None, round(time.time() - start, 1))


def _failed(recipe: Recipe, stages: dict[str, str], stage: str, e: Exception, start: float) -> Rehearsal:
    """A rehearsal exists to find failures: any exception is reported as the stage's, and the run goes on."""
    if isinstance(e, ZooError):
        error = str(e).splitlines()[0]
    else:
        log.debug("%s: %s", recipe.name, stage, exc_info=e)
        error = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
    return Rehearsal(recipe.name, {**stages, stage: "failed"}, error, round(time.time() - start, 1))


def rehearse(
    recipes: list[Recipe],
    catalog: list[Recipe],
    workdir: Path,
    recipe_dir: Path,
    limit: int = 2,
    push: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Rehearsal]:
    """Rehearse each recipe in turn: one alone in this process, several each in a process of its own
    (``in_child``), so memory does not add up across a catalog; shrunk bases are shared on disk."""
    check_push_target(push)
    if "torch" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a rehearsal is the CPU's job, even on a GPU machine
    out: list[Rehearsal] = []
    isolate = len(recipes) > 1
    for i, recipe in enumerate(recipes):
        if progress:
            progress(i, len(recipes))
        args = (recipe, catalog, workdir, recipe_dir, limit, push)
        result = in_child(*args) if isolate else rehearse_one(*args)
        log.info("%s: rehearsal %s in %.1fs", recipe.name, "passed" if result.ok else f"failed: {result.error}", result.seconds)
        out.append(result)
    if progress:
        progress(len(recipes), len(recipes))
    return out


def in_child(recipe: Recipe, catalog: list[Recipe], workdir: Path, recipe_dir: Path, limit: int, push: bool) -> Rehearsal:
    """``rehearse_one`` in a fresh process of its own, so whatever one recipe leaves in memory (a shrunk
    base, a backend's session state, the allocator's high-water mark) is returned to the system before
    the next: a whole-catalog rehearsal peaks at one recipe's memory, not the sum (21 GB in one process).
    A crash of the child (a backend's segfault, the OOM killer) is that recipe's failure, not the run's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    start = time.time()
    level = logging.getLogger("zoo").getEffectiveLevel()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_child, level, recipe, catalog, workdir, recipe_dir, limit, push).result()
        except BrokenProcessPool:
            error = "the rehearsal's process died (killed, out of memory, or a backend crashed); fix: run it alone"
            # which stage it died in is the child's knowledge, lost with it: none is named "failed" wrongly
            return Rehearsal(recipe.name, {"process": "crashed"}, error, round(time.time() - start, 1))


def _child(
    level: int, recipe: Recipe, catalog: list[Recipe], workdir: Path, recipe_dir: Path, limit: int, push: bool
) -> Rehearsal:
    """The child's entry: the parent's logging level, the CPU only, then the recipe."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("zoo").setLevel(level)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    return rehearse_one(recipe, catalog, workdir, recipe_dir, limit, push)
