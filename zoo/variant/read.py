"""Building Variants: from a workdir (``read``, ``read_all``) or from records read anywhere else
(``assemble``: records pulled from the Hub, or a stage's own records already checked).

The records are read through their classes in ``zoo.records`` only. A record that describes another
build than the build.json beside it (an eval.json or bench.json of an earlier build) is dropped, so a
Variant never shows numbers of a checkpoint that no longer exists; push.json is kept (the repo it
names exists) and ``Variant.published`` says whether it released this build.

``merge`` and ``read_all(..., published)`` add what the Hub holds (``zoo.variant.hub``): one rule decides,
per variant, whether the workdir's build or the published release is shown, so a release made from a
workdir holding one variant still sees every other one that was published.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, EvalRecord, PushRecord
from zoo.variant.model import Variant
from zoo.workdir import Layout, read_json, sha256_file

if TYPE_CHECKING:
    from zoo.variant.hub import Published

log = logging.getLogger(__name__)


def assemble(
    recipe: Recipe,
    build: BuildRecord | None = None,
    evaluation: EvalRecord | None = None,
    bench: BenchRecord | None = None,
    push: PushRecord | None = None,
    build_sha256: str | None = None,
    config: dict[str, Any] | None = None,
) -> Variant:
    """A Variant from records read elsewhere. With ``build_sha256`` (of the build.json those records came
    from), an eval or bench record of another build is dropped; without it they are taken as given
    (the caller checked them). No build: nothing measured counts."""
    if build is None:
        return Variant(recipe)
    if build_sha256 is not None:
        if evaluation is not None and evaluation.build_sha256 != build_sha256:
            log.info("%s: eval.json measured an earlier build; shown as not evaluated", recipe.name)
            evaluation = None
        if bench is not None and bench.build_sha256 != build_sha256:
            bench = None
    return Variant(recipe, build, evaluation, bench, push, build_sha256, config)


def read(recipe: Recipe, workdir: Path, push: bool = True) -> Variant:
    """``recipe``'s Variant from its folder in ``workdir``; ``push=False`` leaves push.json out (a card
    shows no link to itself, so its own push must not enter it)."""
    layout = Layout(workdir, recipe.name)
    build = BuildRecord.read(layout)
    if build is None:
        return Variant(recipe)
    try:
        sha = sha256_file(layout.build_json)
    except OSError:  # removed since it was read: nothing beside it can be trusted either
        return Variant(recipe)
    return assemble(
        recipe,
        build,
        EvalRecord.read(layout),
        BenchRecord.read(layout),
        PushRecord.read(layout) if push else None,
        sha,
        text_config(layout.model),
    )


def read_all(recipes: Iterable[Recipe], workdir: Path, published: Published | None = None,
             releasing: Collection[str] = ()) -> list[Variant]:  # fmt: skip
    """Each recipe's Variant: from ``workdir``, or, with ``published`` (``zoo.variant.hub``), whichever of the
    workdir's and the Hub's the merge rule (``merge``) picks."""
    return [merge(read(r, workdir), published, r.name in releasing) for r in recipes]


def merge(local: Variant, published: Published | None, releasing: bool = False) -> Variant:
    """The workdir's Variant or its published one: the workdir's when it is the one being released
    (``releasing``), when its build is newer than the published one, or when nothing readable was published;
    the published one otherwise. Of one build, the workdir's records are kept (an eval or bench run since) with
    the release's push, so it reads as published. A release that could not be read leaves its reason on the
    Variant (``problem``): the site says why a variant that is not built here shows nothing."""
    if published is None:
        return local
    remote = published.variants.get(local.name)
    problem = published.unreadable.get(local.name)
    if remote is None or releasing:
        return replace(local, problem=problem) if problem is not None else local
    if local.build is None or remote.build is None:
        return remote if local.build is None else local
    if local.build_sha256 == remote.build_sha256:
        return local if local.published else replace(local, push=remote.push)
    return local if _when(local.build.created) > _when(remote.build.created) else remote


def _when(created: str) -> datetime:
    """A build's time; one that does not parse (an edited build.json) counts as the oldest."""
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def text_config(model_dir: Path) -> dict[str, Any] | None:
    """The language model's config from the checkpoint's config.json (a multimodal one's ``text_config``)."""
    config = read_json(model_dir / "config.json")  # within zoo.parse's limits: it may have come with a pull
    text = config.get("text_config", config) if config is not None else None
    return text if isinstance(text, dict) else None
