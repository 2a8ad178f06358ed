"""``zoo release``: build -> eval -> bench -> card -> push for each recipe, each stage skipped when done.

One recipe's failure does not stop the others; the summary says what each did, and the caller exits
non-zero when any failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.publish.sign import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseOutcome:
    name: str
    ok: bool
    stages: dict[str, str] = field(default_factory=dict)  # stage -> what happened
    error: str | None = None


def release_one(
    name: str,
    root: Path,
    workdir: Path,
    device: str,
    limit: int | None,
    dry_run: bool,
    wait: bool = False,
    signer: Signer | None = None,
    host_memory: int | None = None,
    backend: str = "hf",
    batch_size: int = 1,
) -> ReleaseOutcome:
    """One recipe's four stages under one hold of its lock, so no other zoo process runs a stage between them.
    ``host_memory`` (bytes) reaches the build, ``backend`` and ``batch_size`` the eval, as their own options."""
    from zoo.quantize import build
    from zoo.card import render
    from zoo.catalog import load, siblings
    from zoo.evaluation.run import evaluate
    from zoo.lock import stage_lock
    from zoo.publish.push import push
    from zoo.serving import bench
    from zoo.workdir import Layout

    stages: dict[str, str] = {}
    stage = "load"
    try:
        recipe = load(name, root)
        with stage_lock(Layout(workdir, recipe.name), "release", wait):
            stage = "build"
            stages[stage] = build(recipe, workdir, root, device, host_memory=host_memory).status
            stage = "eval"
            # the cap is the build's: compressed-tensors cannot read a packed checkpoint back from disk offload
            # (zoo.evaluation.run.refuse_packed_offload), and on the planned runner the eval needs none
            stages[stage] = evaluate(recipe, workdir, root, device, limit, batch_size, backend=backend).status
            stage = "bench"  # before the card: it shows a runtime's snippet only where that runtime served the build
            stages[stage] = bench(recipe, workdir, root, device).status
            stage = "card"
            catalog = siblings(root)
            stages[stage] = render(recipe, catalog, workdir).status
            stage = "push"
            result = push(recipe, workdir, dry_run=dry_run, signer=signer)
            stages[stage] = f"{result.status} {result.repo_id}" + (f" ({len(result.changed)} files)" if result.changed else "")
            if not dry_run:
                from zoo.publish.collections import sync

                stage = "collection"
                done = sync(catalog, workdir, {recipe.name})
                stages[stage] = "; ".join(f"{len(c.added)} added, {len(c.updated)} updated" for c in done) or "skipped"
        return ReleaseOutcome(name, True, stages)
    except ZooError as e:
        log.error("%s: %s failed: %s", name, stage, str(e).splitlines()[0])
        stages[stage] = "failed"
        return ReleaseOutcome(name, False, stages, str(e).splitlines()[0])


def release(
    names: list[str],
    root: Path,
    workdir: Path,
    device: str = "auto",
    limit: int | None = None,
    dry_run: bool = False,
    wait: bool = False,
    signer: Signer | None = None,
    host_memory: int | None = None,
    backend: str = "hf",
    batch_size: int = 1,
) -> list[ReleaseOutcome]:
    return [
        release_one(n, root, workdir, device, limit, dry_run, wait, signer, host_memory, backend, batch_size) for n in names
    ]
