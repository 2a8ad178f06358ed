"""The release's stages, in order, each run as ``run(recipe, layout, options)``, and the loop that runs them.

``zoo release`` runs every one; ``zoo rehearse`` all but ``bench`` and ``collection``; ``zoo build``,
``zoo eval`` and ``zoo bench`` one each, through the same functions. A stage skips itself when its record
is current, so a rerun goes straight to the stage that failed. The bench comes before the card: the card
shows a runtime's snippet only where that runtime served the build. The Collection follows a real push
only (a dry run publishes nothing to collect).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.pipeline.options import RunOptions
from zoo.recipe import Recipe
from zoo.workdir import Layout


def _build(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.quantize.run import build_stage

    return build_stage(recipe, layout, options)


def _eval(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.evaluation.run import eval_stage

    # in a release the host-memory cap is the build's: compressed-tensors cannot read a packed checkpoint back
    # from disk offload (zoo.evaluation.measure.refuse_packed_offload), and on the planned runner the eval needs none
    return eval_stage(recipe, layout, options.but(host_memory=None))


def _bench(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.serving.run import bench_stage

    return bench_stage(recipe, layout, options)


def _siblings(options: RunOptions) -> list[Recipe]:
    from zoo.catalog import siblings

    return list(options.siblings) if options.siblings is not None else siblings(options.recipes)


def published(recipes: list[Recipe], workdir: Path, from_hub: bool | None) -> Any:
    """The releases on the Hub of ``recipes`` (``zoo.variant.hub``), so a one-recipe release's card, site and
    Collection list every published variant; None when not asked or offline (quietly: the default)."""
    from zoo.publish.hub import offline_mode
    from zoo.variant.hub import read_published

    if from_hub is False or (from_hub is None and offline_mode()):
        return None
    return read_published(recipes, workdir, from_hub)


def _card(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.card import render
    from zoo.card.siblings import family

    catalog = _siblings(options)
    if not layout.build_json.exists():  # nothing to card: render says so (exit 8) before any Hub request or folder
        return render(recipe, catalog, layout.workdir, options.force, wait=options.wait)
    others = [r for r in family(recipe, catalog) if r.name != recipe.name]  # its own variant is always the workdir's
    found = published(others, layout.workdir, options.from_hub)
    return render(recipe, catalog, layout.workdir, options.force, wait=options.wait, published=found)


def _push(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.publish.push import push

    return push(recipe, layout.workdir, dry_run=options.dry_run, wait=options.wait, signer=options.signer)


def _collection(recipe: Recipe, layout: Layout, options: RunOptions) -> Any:
    from zoo.publish.collections import sync

    catalog = _siblings(options)
    return sync(catalog, layout.workdir, {recipe.name}, published=published(catalog, layout.workdir, options.from_hub))


def _pushed(result: Any) -> str:
    return f"{result.status} {result.repo_id}" + (f" ({len(result.changed)} files)" if result.changed else "")


def _collected(results: Any) -> str:
    return "; ".join(f"{len(c.added)} added, {len(c.updated)} updated" for c in results) or "skipped"


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Recipe, Layout, RunOptions], Any]  # the stage's result (BuildResult, EvalResult, ...)
    says: Callable[[Any], str] = lambda result: str(result.status)  # the result in a release's table
    applies: Callable[[RunOptions], bool] = lambda options: True


STAGES: tuple[Stage, ...] = (
    Stage("build", _build),
    Stage("eval", _eval),
    Stage("bench", _bench),
    Stage("card", _card),
    Stage("push", _push, _pushed),
    Stage("collection", _collection, _collected, lambda options: not options.dry_run),
)
NAMES = tuple(s.name for s in STAGES)
REHEARSED = ("build", "eval", "card", "push")  # a rehearsal's: no runtime to serve random weights, nothing to collect


@dataclass(frozen=True)
class Run:
    """What ``run`` did: each stage's result in order, and the stage that stopped it with its error."""

    results: dict[str, Any] = field(default_factory=dict)
    failed: str | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def run(
    recipe: Recipe,
    layout: Layout,
    options: RunOptions,
    names: Sequence[str] = NAMES,
    stop_on: tuple[type[Exception], ...] = (ZooError,),
) -> Run:
    """The stages named (in the list's order) on ``recipe``, up to the first that raises one of ``stop_on``;
    any other exception propagates. The caller holds the recipe's lock if the stages must run as one."""
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ValueError(f"no such stage: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    for stage in STAGES:
        if stage.name not in names or not stage.applies(options):
            continue
        try:
            results[stage.name] = stage.run(recipe, layout, options)
        except stop_on as e:
            return Run(results, stage.name, e)
    return Run(results)


def by_name(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)
