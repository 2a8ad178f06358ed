"""The recipe catalog on disk: where it is, which files are recipes, and listing or validating them.

Recipes live in ``recipes/*.yaml``; shared parents live in folders whose names start with ``_``
(``recipes/_base/``) and are not recipes themselves. The catalog is found, in order, from an explicit
directory, ``$ZOO_RECIPES``, ``./recipes``, or the checkout that holds this package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import RecipeError, UnknownNameError, UsageError, did_you_mean
from zoo.methods import METHODS
from zoo.recipe import Problem, Recipe, load_recipe, resolve_file
from zoo.recipe.schema import KEYS, NAME_RULE, valid_name


def recipes_dir(explicit: Path | None = None) -> Path:
    """``--recipes`` when given (it must exist: falling back would silently use another catalog), else the search."""
    if explicit is not None:
        if not Path(explicit).is_dir():
            raise UsageError(f"recipe directory {explicit} does not exist; fix: pass --recipes DIR with the catalog's folder")
        return Path(explicit)
    candidates = [
        os.environ.get("ZOO_RECIPES"),
        Path.cwd() / "recipes",
        Path(__file__).parent / "recipes",  # the catalog shipped in the package (a link to recipes/ in a checkout)
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    raise UsageError("no recipes/ directory found; run from the zoo checkout, or set ZOO_RECIPES / --recipes DIR")


def recipe_paths(root: Path) -> list[Path]:
    return sorted((p for p in root.glob("*.yaml") if not p.name.startswith("_")), key=lambda p: p.stem)


def base_paths(root: Path) -> list[Path]:
    return sorted(p for d in root.glob("_*") if d.is_dir() for p in d.rglob("*.yaml"))


def find(name: str, root: Path) -> Path:
    """A catalog recipe by name; a path or any other spelling is refused, so nothing outside the catalog loads."""
    if not valid_name(name):
        raise UsageError(f"{name!r} is not a recipe name ({NAME_RULE}); fix: give a name from `zoo list`, not a path")
    path = root / f"{name}.yaml"
    if not path.exists():
        raise UnknownNameError("recipe", name, [p.stem for p in recipe_paths(root)])
    return path


def load(name: str, root: Path) -> Recipe:
    recipe: Recipe = load_recipe(find(name, root))
    return recipe


def validate_base(path: Path) -> list[Problem]:
    """A parent file is partial: check its YAML, its extends chain and that its keys exist."""
    problems: list[Problem] = []
    raw = resolve_file(path, problems)
    for key in sorted(raw or {}):
        if key not in KEYS:
            problems.append(Problem(str(path), key, "unknown key", did_you_mean(key, KEYS).removeprefix("; ") or None))
    return problems


def validate(paths: list[Path], strict: bool = False) -> list[Problem]:
    """Every problem in every file; parent files (under ``_*/``) get the partial check; ``strict`` adds
    what a release needs (bases pinned to a commit)."""
    from zoo.card.check import template_problems
    from zoo.recipe.check import strict_problems

    problems: list[Problem] = []
    for path in paths:
        if path.parent.name.startswith("_"):
            problems.extend(validate_base(path))
            continue
        problems.extend(template_problems(path))
        try:
            recipe = load_recipe(path)
        except RecipeError as e:
            problems.extend(e.problems)  # type: ignore[arg-type]
            continue
        if strict:
            problems.extend(strict_problems(path, recipe))
    return problems


@dataclass(frozen=True)
class Entry:
    """One row of ``zoo list``."""

    name: str
    family: str
    base: str
    method: str
    bits: float
    group: str
    act_bits: int | None
    format: str
    buildable: bool

    @classmethod
    def of(cls, r: Recipe) -> Entry:
        group = "channel" if r.weights.group_size == "channel" else f"g{r.weights.group_size}"
        return cls(
            name=r.name,
            family=r.family,
            base=r.base_name,
            method=r.method,
            bits=r.weights.bits,
            group=group,
            act_bits=r.activations.bits if r.activations else None,
            format=r.format or "",
            buildable=METHODS.get(r.method).buildable,
        )


def entries(root: Path, family: str | None = None, method: str | None = None, bits: float | None = None) -> list[Entry]:
    """The catalog as rows, filtered; an invalid recipe stops the listing with its problems."""
    rows = [Entry.of(load_recipe(p)) for p in recipe_paths(root)]
    if family is not None:
        rows = [r for r in rows if family in (r.family, r.base) or r.name.startswith(family + "-")]
    if method is not None:
        if method not in METHODS:
            raise UnknownNameError("method", method, METHODS.names())
        rows = [r for r in rows if r.method == method]
    if bits is not None:
        rows = [r for r in rows if r.bits == bits]
    return rows
