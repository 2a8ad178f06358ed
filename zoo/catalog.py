"""The recipe catalog on disk: where it is, which files are recipes, and listing or validating them.

Recipes live in ``recipes/*.yaml``; shared parents live in folders whose names start with ``_``
(``recipes/_base/``) and are not recipes themselves. The catalog is found, in order, from an explicit
directory, ``$ZOO_RECIPES``, ``./recipes``, or the checkout that holds this package.

``zoo list``, ``zoo show`` and ``zoo validate`` answer from a snapshot of this (``zoo/snapshot.py``),
so that they import neither pydantic nor the methods while nothing changed; this module therefore
imports those only inside the functions that need them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import RecipeError, UnknownNameError, UsageError, did_you_mean

if TYPE_CHECKING:
    from zoo.recipe import Problem, Recipe

log = logging.getLogger(__name__)


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
    from zoo.recipe.schema import NAME_RULE, valid_name

    if not valid_name(name):
        raise UsageError(f"{name!r} is not a recipe name ({NAME_RULE}); fix: give a name from `zoo list`, not a path")
    path = root / f"{name}.yaml"
    if not path.exists():
        raise UnknownNameError("recipe", name, [p.stem for p in recipe_paths(root)])
    return path


def load(name: str, root: Path) -> Recipe:
    from zoo.recipe import load_recipe

    recipe: Recipe = load_recipe(find(name, root))
    return recipe


def siblings(root: Path) -> list[Recipe]:
    """Every valid catalog recipe, for the card's sibling table: an invalid one is left out with a warning,
    so another recipe's typo never blocks this variant's card or release (``zoo validate`` reports it)."""
    from zoo.recipe import load_recipe

    out: list[Recipe] = []
    for path in recipe_paths(root):
        try:
            out.append(load_recipe(path))
        except RecipeError as e:
            log.warning("%s is invalid (%s); left out of sibling tables; fix: zoo validate %s", path.name,
                        str(e).splitlines()[0], path.stem)  # fmt: skip
    return out


def validate_base(path: Path) -> list[Problem]:
    """A parent file is partial: check its YAML, its extends chain and that its keys exist."""
    from zoo.recipe import Problem, resolve_file
    from zoo.recipe.schema import KEYS

    problems: list[Problem] = []
    raw = resolve_file(path, problems)
    for key in sorted(raw or {}):
        if key not in KEYS:
            problems.append(Problem(str(path), key, "unknown key", did_you_mean(key, KEYS).removeprefix("; ") or None))
    return problems


def check_file(path: Path) -> tuple[list[Problem], list[Problem], Recipe | None]:
    """``validate`` of one file: its problems, what ``strict`` adds, and the recipe when it loaded."""
    from zoo.recipe import load_recipe
    from zoo.recipe.check import strict_problems

    if path.parent.name.startswith("_"):
        return validate_base(path), [], None
    try:
        recipe = load_recipe(path)  # card.template included: its check is the recipe's now (#28)
    except RecipeError as e:
        return list(e.problems), [], None  # type: ignore[arg-type]
    return [], strict_problems(path, recipe), recipe


def validate(paths: list[Path], strict: bool = False) -> list[Problem]:
    """Every problem in every file; parent files (under ``_*/``) get the partial check; ``strict`` adds
    what a release needs (bases pinned to a commit)."""
    problems: list[Problem] = []
    for path in paths:
        found, release, _ = check_file(path)
        problems += (found + release) if strict else found
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
        from zoo.methods import METHODS

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
    from zoo.methods import METHODS
    from zoo.recipe import load_recipe

    rows = [Entry.of(load_recipe(p)) for p in recipe_paths(root)]
    return _select(rows, family, method, bits, METHODS.names())


def _select(rows: list[Entry], family: str | None, method: str | None, bits: float | None, methods: list[str]) -> list[Entry]:
    if family is not None:
        rows = [r for r in rows if family in (r.family, r.base) or r.name.startswith(family + "-")]
    if method is not None:
        if method not in methods:
            raise UnknownNameError("method", method, methods)
        rows = [r for r in rows if r.method == method]
    if bits is not None:
        rows = [r for r in rows if r.bits == bits]
    return rows
