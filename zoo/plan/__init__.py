"""``zoo plan``: what each stage of a release needs, and how it fits a machine, before GPU hours are spent.

For every recipe and stage (build or LoRA training, the 16-bit baseline, the eval, lmms-eval for
LLaVA-Next, lm-eval on vLLM when asked) the peak accelerator, host and disk bytes, computed from the
base's config at its pinned revision (``shape.py``; shipped with zoo for the study's bases, so it works
offline and on the light install), and the placement that fits (``fit.py``): one GPU, layers spread
over several (accelerate's ``device_map``), host or disk offload (``--host-memory``), vLLM tensor
parallelism. A stage that fits nowhere on the machine is refused (exit 13) naming the smallest runner
class that would take it. ``zoo matrix`` takes each recipe's runner labels from the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.plan.estimate import needs
from zoo.plan.fit import RUNNERS, Machine, Placement, Runner, fits_all, gb
from zoo.plan.shape import Shape, shape

if TYPE_CHECKING:
    from zoo.recipe import Recipe

__all__ = ["RUNNERS", "Machine", "Placement", "RecipePlan", "Runner", "plan", "plan_recipe", "runner_for", "shape"]


@dataclass(frozen=True)
class RecipePlan:
    recipe: str
    base: str
    params: int
    machine: Machine
    stages: tuple[Placement, ...]
    runner: Runner | None  # the smallest runner class a release of it fits

    @property
    def fits(self) -> bool:
        return all(p.fits for p in self.stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "base": self.base,
            "parameters": self.params,
            "fits": self.fits,
            "runner": None if self.runner is None else {"name": self.runner.name, "labels": list(self.runner.labels)},
            "stages": [
                {"stage": p.stage, "fits": p.fits, "strategy": p.strategy, "gpus": p.gpus, "accelerator_bytes": p.per_gpu,
                 "host_bytes": p.host, "disk_bytes": p.disk, "flags": list(p.flags), "offloaded": p.offloaded,
                 **({"why": p.why} if p.why else {}), **({"note": p.note} if p.note else {})}
                for p in self.stages
            ],  # fmt: skip
        }


def placements(
    recipe: Recipe, s: Shape, m: Machine, batch: int = 1, backend: str = "hf", release: bool = False
) -> list[Placement]:
    """``release``: evals may not stream weights from host or disk (correct, but days long for 70B)."""
    return fits_all(needs(recipe, s, m.gpus > 0, batch, backend), m, allow_offload=not release)


def runner_for(recipe: Recipe, s: Shape, batch: int = 1, backend: str = "hf") -> Runner | None:
    """The smallest runner class on which every stage of a release fits, evals with no offload."""
    for r in RUNNERS:
        if all(p.fits for p in placements(recipe, s, r.machine, batch, backend, release=True)):
            return r
    return None


def plan_recipe(recipe: Recipe, recipe_dir: Path, m: Machine | None, batch: int = 1, backend: str = "hf") -> RecipePlan:
    """``m`` None: the release plan, on the smallest runner class that takes every stage."""
    s = shape(recipe, recipe_dir)
    runner = runner_for(recipe, s, batch, backend)
    machine = m or (runner.machine if runner else RUNNERS[-1].machine)
    stages = tuple(placements(recipe, s, machine, batch, backend, release=m is None))
    return RecipePlan(recipe.name, recipe.base_name, s.params, machine, stages, runner)


def refusal(p: RecipePlan) -> str:
    """One line: the first stage that does not fit, why, and the smallest machine that would."""
    bad = [s for s in p.stages if not s.fits]
    first = bad[0]
    more = f" (and {len(bad) - 1} more stage{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    where = (
        f"run it on {p.runner.name} ({p.runner.machine.describe()}; runs-on: {', '.join(p.runner.labels)})"
        if p.runner
        else "none of zoo's runner classes holds it (`zoo plan` without machine options lists each stage's need)"
    )
    return f"{p.recipe}: {first.stage} does not fit {p.machine.describe()}: {first.why}{more}; fix: {where}"


def plan(recipes: list[Recipe], recipe_dir: Path, m: Machine | None, batch: int = 1, backend: str = "hf") -> list[RecipePlan]:
    """Every recipe's plan on ``m`` (None: each on its release runner); raises ``DoesNotFitError`` naming the
    first that cannot run there."""
    from zoo.errors import DoesNotFitError

    plans = [plan_recipe(r, recipe_dir, m, batch, backend) for r in recipes]
    for p in plans:
        if not p.fits:
            raise DoesNotFitError(refusal(p))
    return plans


def notes(plans: list[RecipePlan]) -> list[str]:
    """Why a stage leaves GPUs idle, once per distinct reason, naming the recipes it applies to."""
    by_note: dict[str, list[str]] = {}
    for p in plans:
        for s in p.stages:
            if s.note and p.recipe not in by_note.setdefault(s.note, []):
                by_note[s.note].append(p.recipe)
    out = []
    for note, names in by_note.items():
        who = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
        out.append(f"{who}: build on one GPU: {note}")
    return out


def describe(p: RecipePlan) -> list[dict[str, str]]:
    """Table rows for the text output."""
    return [
        {"recipe": p.recipe, "stage": s.stage, "strategy": s.strategy + (" (slow: weights streamed)" if s.offloaded else ""),
         "GPUs": str(s.gpus), "per GPU": gb(s.per_gpu) if s.per_gpu else "-", "host": gb(s.host), "disk": gb(s.disk),
         "flags": " ".join(s.flags)}
        for s in p.stages
    ]  # fmt: skip
