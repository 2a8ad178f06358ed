"""``zoo matrix``: the recipe list as a GitHub Actions matrix, with runner labels from ``zoo plan``.

Each row's ``runner`` is the smallest runner class on which every stage of the recipe's release fits
(``zoo.plan``, from the base's config), ``host_memory`` the ``--host-memory`` its build needs there (empty
when none), and ``base`` / ``baseline_runner`` let the workflow measure each base once before its variants.

``changed_since`` keeps recipes whose file, or any file they inherit from, differs from that git
ref (committed or not), so a change to ``recipes/_base/llama3.yaml`` re-releases every LLaMA-3 variant.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import DoesNotFitError, UsageError, ZooError

if TYPE_CHECKING:
    from zoo.plan import Machine
    from zoo.recipe import Recipe


def row(recipe: Recipe, root: Path) -> dict[str, Any]:
    """One matrix row: the recipe, its runner's labels and the flags its stages need there."""
    from zoo.evaluation.run import base_key
    from zoo.plan import RUNNERS, placements, runner_for, shape

    s = shape(recipe, root)
    r = runner_for(recipe, s)
    if r is None:
        raise DoesNotFitError(
            f"{recipe.name}: no runner class holds every stage of its release; fix: `zoo plan {recipe.name}` shows each need"
        )
    first = placements(recipe, s, r.machine, release=True)[0]
    flags = dict(zip(first.flags[::2], first.flags[1::2], strict=True))

    def baseline_fits(machine: Machine) -> bool:
        return all(p.fits for p in placements(recipe, s, machine, release=True) if p.stage == "baseline")

    baseline = next(x for x in RUNNERS if baseline_fits(x.machine))
    return {
        "recipe": recipe.name,
        "runner": list(r.labels),
        "memory_gb": round(recipe.base.parameters * 2, 1),
        "host_memory": flags.get("--host-memory", ""),
        "base": base_key(recipe),
        "baseline_runner": list(baseline.labels),
    }


def resolve_ref(ref: str, root: Path) -> str:
    """The commit ``ref`` names, resolved by git as data: ``--end-of-options`` keeps an option-shaped
    ref (``--output=FILE``) from ever being read as an option, and only the commit id is used after."""
    res = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    commit = res.stdout.strip()
    if res.returncode or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise UsageError(
            f"cannot diff recipes against {ref!r}: it is not a commit in this git repository; fix: give a ref that exists"
        )
    return commit


def changed_files(ref: str, root: Path) -> set[Path]:
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    if top.returncode:
        msg = top.stderr.strip().splitlines()
        raise ZooError(f"cannot diff recipes against {ref!r}: {msg[0] if msg else 'git failed'}; fix: run it in a git checkout")
    commit = resolve_ref(ref, root)
    diff = subprocess.run(["git", "diff", "--name-only", "-z", commit, "--", "."], cwd=root, capture_output=True, text=True)
    if diff.returncode:
        msg = diff.stderr.strip().splitlines()
        raise ZooError(f"cannot diff recipes against {ref!r}: {msg[0] if msg else 'git failed'}; fix: give a ref that exists")
    untracked = subprocess.run(
        ["git", "ls-files", "-z", "--others", "--exclude-standard", "."], cwd=root, capture_output=True, text=True
    )
    base = Path(top.stdout.strip())
    here = Path(root).resolve().relative_to(base)
    names = [n for n in diff.stdout.split("\0") if n] + [str(here / n) for n in untracked.stdout.split("\0") if n]
    return {(base / n).resolve() for n in names}


def matrix(
    root: Path,
    changed_since: str | None = None,
    family: str | None = None,
    method: str | None = None,
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``names``: only these recipes (each checked, with a did-you-mean), narrowed further by the rest."""
    from zoo.catalog import entries, find, load
    from zoo.recipe.load import inherited_files

    rows = entries(root, family, method)
    if names:
        wanted = {load(n, root).name for n in names}
        rows = [r for r in rows if r.name in wanted]
    if changed_since is not None:
        changed = changed_files(changed_since, root)
        rows = [r for r in rows if inherited_files(find(r.name, root)) & changed]
    return {"include": [row(load(r.name, root), root) for r in rows]}
