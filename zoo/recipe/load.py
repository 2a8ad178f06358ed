"""Reading recipe files: YAML, ``extends:`` inheritance, and turning a file into a resolved ``Recipe``.

``extends`` names one file or a list of files, relative to the recipe (the ``.yaml`` suffix may be
left out). Parents merge first, in order, then the file itself: mappings merge key by key, anything
else (lists included) is replaced. Shared defaults thus live once under ``recipes/_base/``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import RecipeError, did_you_mean
from zoo.recipe.problem import Problem
from zoo.recipe.schema import Recipe

# libyaml's loader when PyYAML has it (3x faster); the same safe subset of YAML either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_parsed: dict[tuple[str, int, int], Any] = {}  # (path, mtime_ns, size) -> data: `_base` files load once


def _load(path: Path) -> Any:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _parsed:
        _parsed[key] = yaml.load(path.read_bytes().decode("utf-8"), Loader=_LOADER)  # noqa: S506 (a safe loader)
    return _copy(_parsed[key])


def _copy(data: Any) -> Any:
    """A copy of parsed YAML (mappings, lists, scalars), ~10x cheaper than ``copy.deepcopy`` on it."""
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data if isinstance(data, (str, int, float, bool, type(None))) else copy.deepcopy(data)


def read_yaml(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        data = _load(path)
    except FileNotFoundError:
        problems.append(Problem(str(path), "", "file not found"))
        return None
    except IsADirectoryError:
        problems.append(Problem(str(path), "", "is a folder, not a recipe file"))
        return None
    except UnicodeDecodeError as e:
        problems.append(Problem(str(path), "", f"not UTF-8 text (byte {e.start})", "save the recipe as UTF-8 YAML"))
        return None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if mark is not None and _tab_at(path, mark.line, mark.column):
            problems.append(Problem(str(path), "", f"invalid YAML{line}: a tab; YAML indents with spaces", TAB_FIX))
            return None
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        problems.append(Problem(str(path), "", f"invalid YAML{line}: {what}", "correct the YAML syntax"))
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "", f"expected a mapping at top level, got {type(data).__name__}"))
        return None
    return data


TAB_FIX = "replace tabs with spaces"


def _tab_at(path: Path, line: int, column: int) -> bool:
    """Whether a tab caused the YAML error at (line, column): PyYAML says "found character '\\t' that cannot
    start any token" (libyaml not even that) where the cause is a tab in the indentation."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    text = lines[line] if 0 <= line < len(lines) else ""
    indent = text[: len(text) - len(text.lstrip(" \t"))]
    return "\t" in indent or text[column : column + 1] == "\t"


def merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _target(path: Path, ref: str) -> Path:
    p = (path.parent / ref).resolve()
    return p if p.suffix in (".yaml", ".yml") else p.with_name(p.name + ".yaml")


def resolve_file(path: Path, problems: list[Problem], _stack: tuple[Path, ...] = ()) -> dict[str, Any] | None:
    """The file merged over everything it extends; problems are appended, never raised."""
    path = path.resolve()
    if path in _stack:
        chain = " -> ".join(p.name for p in (*_stack, path))
        problems.append(Problem(str(_stack[0]), "extends", f"inheritance cycle: {chain}", "remove one extends link"))
        return None
    data = read_yaml(path, problems)
    if data is None:
        return None
    from zoo.recipe.check import check_secrets

    check_secrets(str(path), data, problems)  # each file's own strings, so a parent's token names the parent
    refs = data.pop("extends", None)
    if refs is None:
        return data
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        problems.append(Problem(str(path), "extends", "must be a file name or a list of file names"))
        return None
    merged: dict[str, Any] = {}
    for ref in refs:
        target = _target(path, ref)
        if not target.exists():
            problems.append(_missing_parent(path, ref, target, _stack))
            return None
        parent = resolve_file(target, problems, (*_stack, path))
        if parent is None:
            return None
        merged = merge(merged, parent)
    return merge(merged, data)


def _missing_parent(path: Path, ref: str, target: Path, stack: tuple[Path, ...]) -> Problem:
    """What is wrong when an ``extends`` target is missing: where zoo ships that parent, else the nearest file
    that could be meant (never the file itself or one extending it), else why there is none."""
    missing = f"{ref!r} not found (looked for {target})"
    shipped = Path(__file__).resolve().parents[1] / "recipes" / os.path.relpath(target, path.parent)
    if shipped.is_file() and shipped.resolve() != target:  # a recipe copied out of the catalog, without its parents
        if not target.parent.is_dir():
            why = f"{os.path.relpath(target.parent, path.parent)}/ is not beside {path.name}"
            fix = f"copy the shipped parents beside it (cp -r {shipped.parent} {target.parent}), or use the full catalog"
        else:
            why = f"{target.parent.name}/ lacks it"
            fix = f"copy the shipped one: cp {shipped} {target}"
        return Problem(str(path), "extends", f"{missing}: {why}", fix)
    root = path.parent.parent if path.parent.name.startswith("_") else path.parent
    skip = {path, *stack}
    near = [os.path.relpath(p, path.parent).removesuffix(".yaml") for p in root.rglob("*.yaml") if p.resolve() not in skip]
    hint = did_you_mean(ref, near)
    if hint:
        return Problem(str(path), "extends", f"{missing}{hint}")
    return Problem(str(path), "extends", f"{missing}: no parent file here to extend",
                   "write the parent file, or remove the extends line and give every field in this file")  # fmt: skip


def inherited_files(path: Path) -> set[Path]:
    """The file and every file it extends, directly or not (for "which recipes did a change touch")."""
    out, todo = set(), [Path(path).resolve()]
    while todo:
        p = todo.pop()
        if p in out or not p.exists():
            continue
        out.add(p)
        data = read_yaml(p, []) or {}
        refs = data.get("extends") or []
        todo.extend(_target(p, r) for r in ([refs] if isinstance(refs, str) else refs) if isinstance(r, str))
    return out


def load_recipe(path: Path) -> Recipe:
    """A fully resolved, validated ``Recipe``, or ``RecipeError`` listing every problem in the file."""
    from zoo.recipe.check import check, check_own

    problems: list[Problem] = []
    raw = resolve_file(Path(path), problems)
    if raw is None:
        own = read_yaml(Path(path), []) if problems and problems[-1].field == "extends" else None
        if own is not None:  # still report what is wrong in the file itself
            own.pop("extends", None)
            problems += check_own(Path(path), own)
        raise RecipeError(problems)
    recipe, found = check(Path(path), raw)
    problems += found
    if recipe is None or problems:
        raise RecipeError(problems)
    return recipe
