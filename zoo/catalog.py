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


def recipes_dir(explicit: Path | str | None = None) -> Path:
    """``--recipes`` when given (it must exist: falling back would silently use another catalog), else the search."""
    if explicit is not None and not str(explicit).strip():
        raise UsageError(
            f"--recipes {str(explicit)!r} is empty (an unset shell variable?); fix: pass --recipes with the catalog's "
            "folder, or leave it out for $ZOO_RECIPES, ./recipes or the catalog zoo ships"
        )
    if explicit is not None:
        if not Path(explicit).is_dir():
            raise UsageError(f"recipe directory {explicit} does not exist; fix: pass --recipes DIR with the catalog's folder")
        return Path(explicit)
    env = os.environ.get("ZOO_RECIPES")
    if env and not Path(env).is_dir():  # set but wrong: falling back would silently use another catalog too
        raise UsageError(
            f"ZOO_RECIPES={env!r} (from the environment) is not a folder; fix: set ZOO_RECIPES to the catalog's folder, "
            "or unset it (./recipes, then the packaged catalog)"
        )
    candidates = [
        env,
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
        declared = _declaring(name, root)
        if declared is not None:  # a recipe copied under another file name: the file name is the name
            raise UsageError(
                f"unknown recipe {name!r}: {declared.name} says name: {name}, but a recipe's name is its file name; "
                f"fix: rename {declared} to {name}.yaml (or run it as {declared.stem} after setting name: {declared.stem})"
            )
        names = [p.stem for p in recipe_paths(root)]
        fix = f"run `zoo list` for the names ({len(names)} recipes in {root})" if names else "pass --recipes DIR"
        raise UnknownNameError("recipe", name, names, fix)
    return path


def _declaring(name: str, root: Path) -> Path | None:
    """The catalog file whose ``name:`` line is ``name`` (a plain text scan: only on the failure path)."""
    import re

    line = re.compile(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", re.MULTILINE)
    for path in recipe_paths(root):
        try:
            if line.search(path.read_text(encoding="utf-8", errors="replace")):
                return path
        except OSError:
            continue
    return None


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
    return list(dict.fromkeys(problems))  # a parent's problem found through each child is reported once


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
    """The rows matching every filter given; a family, method or bit width no recipe has is refused (exit 2)
    with the nearest one, so a typo is never an empty listing."""
    every = rows
    if family is not None:
        matching = [r for r in rows if family in (r.family, r.base) or r.name.startswith(family + "-")]
        if not matching and rows:
            raise UnknownNameError("family", family, families(rows))
        rows = matching
    if method is not None:
        if method not in methods:
            raise UnknownNameError("method", method, methods)
        rows = [r for r in rows if r.method == method]
    if bits is not None:
        if every and not any(r.bits == bits for r in every):
            raise UnknownNameError("bit width", f"{bits:g}", {f"{r.bits:g}" for r in every})
        rows = [r for r in rows if r.bits == bits]
    return rows


def families(rows: list[Entry]) -> list[str]:
    """What ``--family`` takes: the families and the bases as recipe names start with them (``llama3-70b``)."""
    prefixes = {r.name.split(f"-{r.method}-", 1)[0] for r in rows if f"-{r.method}-" in r.name}
    return sorted({r.family for r in rows} | prefixes)
