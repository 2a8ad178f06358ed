"""``zoo release``: build -> eval -> bench -> card -> push (-> collection) for each recipe, each stage
skipped when done (``zoo.pipeline.stages`` holds the list and runs it).

One recipe's failure does not stop the others; the summary says what each did, and the caller exits
non-zero when any failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import ZooError
from zoo.pipeline.options import RunOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseOutcome:
    name: str
    ok: bool
    stages: dict[str, str] = field(default_factory=dict)  # stage -> what happened
    error: str | None = None


def release_one(name: str, options: RunOptions, workdir: Path) -> ReleaseOutcome:
    """One recipe's stages under one hold of its lock, so no other zoo process runs a stage between them."""
    from zoo.catalog import load
    from zoo.lock import stage_lock
    from zoo.pipeline import stages as pipeline
    from zoo.workdir import Layout

    try:
        recipe = load(name, options.recipes)
        layout = Layout(workdir, recipe.name)
        with stage_lock(layout, "release", options.wait):
            done = pipeline.run(recipe, layout, options)
    except ZooError as e:  # the recipe would not load, or its lock is held
        log.error("%s: load failed: %s", name, str(e).splitlines()[0])
        return ReleaseOutcome(name, False, {"load": "failed"}, str(e).splitlines()[0])
    said = {s: pipeline.by_name(s).says(r) for s, r in done.results.items()}
    if done.ok:
        return ReleaseOutcome(name, True, said)
    first = str(done.error).splitlines()[0]
    log.error("%s: %s failed: %s", name, done.failed, first)
    return ReleaseOutcome(name, False, {**said, str(done.failed): "failed"}, first)


def release(names: list[str], options: RunOptions, workdir: Path) -> list[ReleaseOutcome]:
    return [release_one(n, options, workdir) for n in names]
