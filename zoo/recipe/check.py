"""Every check on a merged recipe, collected rather than raised, so one run reports every problem.

Structural errors come from pydantic (with a did-you-mean for unknown keys); the checks here need the
registries and run on the raw mapping, defensively, so they still report when pydantic did not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from zoo.data import DATASETS
from zoo.errors import did_you_mean
from zoo.families import FAMILIES
from zoo.methods import METHODS
from zoo.recipe.problem import Problem
from zoo.recipe.schema import Recipe
from zoo.tasks import TASKS
from zoo.tiny.bases import BUILTIN_BASES
from zoo.tiny.bases import HERE as TINY_DIR

# Top-level keys other tools use for what zoo calls otherwise: a close spelling would not find them.
SYNONYMS = {k: "did you mean 'extends'?" for k in ("inherits", "inherit", "parent", "base_recipe", "defaults")}


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names valid at ``loc`` (for did-you-mean on an unknown key)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        nested = [a for a in (*getattr(ann, "__args__", ()), ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def pydantic_problems(file: str, err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        field = ".".join(str(p) for p in (prefix, *loc) if p != "")
        if e["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            hint = SYNONYMS.get(str(loc[-1])) if len(loc) == 1 else None
            hint = hint or did_you_mean(str(loc[-1]), known).removeprefix("; ")
            out.append(Problem(file, field, "unknown key", hint or "remove it"))
        elif e["type"] == "missing":
            out.append(Problem(file, field, "required key is missing", "add it here or in a file this extends"))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            out.append(Problem(file, field, f"{msg} (got {e.get('input')!r})" if "input" in e else msg))
    return out


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _unknown(file: str, field: str, kind: str, name: object, known: Any) -> Problem:
    return Problem(file, field, f"unknown {kind} {name!r}", did_you_mean(str(name), known).removeprefix("; ") or None)


def _model_dims(base: dict[str, Any]) -> dict[str, int]:
    dims = {k: base[k] for k in ("hidden_size", "intermediate_size") if isinstance(base.get(k), int)}
    if base.get("builtin") in BUILTIN_BASES:
        cfg = json.loads((TINY_DIR / "tiny-llama3" / "config.json").read_text())
        dims = {k: cfg[k] for k in ("hidden_size", "intermediate_size")}
    return dims


def _check_method(file: str, raw: dict[str, Any], out: list[Problem]) -> Any:
    method = raw.get("method")
    if not isinstance(method, str) or method not in METHODS:
        if isinstance(method, str):
            out.append(_unknown(file, "method", "method", method, METHODS.names()))
        return None
    spec = METHODS.get(method)
    params = raw.get("params") or {}
    if isinstance(params, dict):
        try:
            spec.params(**params)
        except ValidationError as e:
            out.extend(pydantic_problems(file, e, spec.params, "params"))
    weights = _section(raw, "weights")
    bits, group = weights.get("bits"), weights.get("group_size", 128)
    if isinstance(bits, (int, float)) and bits not in spec.weight_bits:
        allowed = ", ".join(f"{b:g}" for b in spec.weight_bits)
        out.append(Problem(file, "weights.bits", f"{spec.title} does not support {bits:g}-bit weights", f"use one of {allowed}"))
    if group == "channel" and not spec.per_channel:
        example = spec.group_sizes[0] if spec.group_sizes else 128
        out.append(
            Problem(file, "weights.group_size", f"{spec.title} has no per-channel mode", f"set a group size, e.g. {example}")
        )
    elif spec.group_sizes and group not in spec.group_sizes:
        sizes = ", ".join(map(str, spec.group_sizes))
        out.append(
            Problem(file, "weights.group_size", f"{spec.title} quantizes in blocks of {sizes}", f"set group_size: {sizes}")
        )
    family = raw.get("family")
    if spec.text_only and isinstance(family, str) and family in FAMILIES and FAMILIES.get(family).multimodal:
        out.append(
            Problem(file, "method", f"{spec.title} is implemented for text-only families, not {family}", "use a llama3 base")
        )
    if isinstance(group, int) and not spec.grouped:
        out.append(Problem(file, "weights.group_size", f"{spec.title} quantizes per channel only", "set group_size: channel"))
    acts = raw.get("activations")
    if spec.needs_activations and acts is None:
        out.append(Problem(file, "activations", f"{spec.title} quantizes activations too", "add activations: {bits: 8}"))
    if acts is not None and not spec.needs_activations:
        out.append(Problem(file, "activations", f"{spec.title} quantizes weights only", "remove activations"))
    if isinstance(acts, dict) and isinstance(acts.get("bits"), int) and spec.needs_activations:
        if acts["bits"] not in spec.activation_bits:
            allowed = ", ".join(map(str, spec.activation_bits))
            out.append(
                Problem(file, "activations.bits", f"{spec.title} does not support A{acts['bits']}", f"use one of {allowed}")
            )
    fmt = raw.get("format")
    if isinstance(fmt, str) and fmt not in spec.formats:
        out.append(_unknown(file, "format", f"format for {spec.title}", fmt, spec.formats))
    return spec


def _check_names(file: str, path: Path, raw: dict[str, Any], out: list[Problem]) -> None:
    name = raw.get("name")
    if isinstance(name, str) and name != path.stem:
        out.append(Problem(file, "name", f"{name!r} does not match the file name {path.stem!r}", f"set name: {path.stem}"))
    family = raw.get("family")
    if isinstance(family, str) and family not in FAMILIES:
        out.append(_unknown(file, "family", "family", family, FAMILIES.names()))
    base = _section(raw, "base")
    builtin = base.get("builtin")
    if isinstance(builtin, str) and builtin not in BUILTIN_BASES:
        out.append(_unknown(file, "base.builtin", "built-in base", builtin, BUILTIN_BASES))
    local = base.get("path")
    if isinstance(local, str) and not (path.parent / local).expanduser().exists():
        out.append(Problem(file, "base.path", f"local base {local!r} does not exist", "give a directory with config.json"))
    cal = _section(raw, "calibration")
    ds = cal.get("dataset", "wikitext2")
    if isinstance(ds, str) and ds not in DATASETS:
        out.append(_unknown(file, "calibration.dataset", "dataset", ds, DATASETS))
    if ds == "file":
        p = cal.get("path")
        if not isinstance(p, str):
            out.append(Problem(file, "calibration.path", "dataset 'file' needs a path", "add calibration.path: data.txt"))
        elif not (path.parent / p).exists():
            out.append(Problem(file, "calibration.path", f"{p!r} does not exist", "give a path relative to the recipe"))
    multimodal = isinstance(family, str) and family in FAMILIES and FAMILIES.get(family).multimodal
    if cal.get("images") is not None and not multimodal:
        out.append(
            Problem(file, "calibration.images", "image calibration needs a multimodal family", "remove calibration.images")
        )
    ev = _section(raw, "eval")
    for i, ppl in enumerate(ev.get("perplexity") or []):
        if ppl not in DATASETS or ppl == "file":
            out.append(_unknown(file, f"eval.perplexity.{i}", "perplexity dataset", ppl, set(DATASETS) - {"file"}))
    for i, task in enumerate(ev.get("tasks") or []):
        if task not in TASKS:
            out.append(_unknown(file, f"eval.tasks.{i}", "task", task, TASKS))
        elif TASKS[task].harness == "lmms-eval" and not multimodal:
            out.append(Problem(file, f"eval.tasks.{i}", f"{task!r} is a multimodal task", "use it with llava-next only"))


def _context(base: dict[str, Any]) -> int | None:
    if base.get("builtin") in BUILTIN_BASES:
        cfg = json.loads((TINY_DIR / "tiny-llama3" / "config.json").read_text())  # tiny-llava-next's language model too
        return int(cfg["max_position_embeddings"])
    ctx = base.get("context_length")
    return ctx if isinstance(ctx, int) and not isinstance(ctx, bool) else None


def _check_lengths(file: str, raw: dict[str, Any], out: list[Problem]) -> None:
    """Windows longer than the base's context would be measured on positions it never saw."""
    ctx = _context(_section(raw, "base"))
    if ctx is None:
        return
    for section in ("calibration", "eval"):
        seqlen = _section(raw, section).get("seqlen")
        if isinstance(seqlen, int) and not isinstance(seqlen, bool) and seqlen > ctx:
            msg = f"{seqlen} is longer than the base's context ({ctx})"
            out.append(Problem(file, f"{section}.seqlen", msg, f"use at most {ctx}"))


def strict_problems(path: Path, recipe: Recipe) -> list[Problem]:
    """What a release needs beyond validity: a base pinned to a commit, so a rebuild quantizes the same weights."""
    if recipe.base.pinned:
        return []
    return [
        Problem(
            str(path),
            "base.revision",
            f"{recipe.base.revision!r} is a branch, not a commit: it can move under the same recipe",
            "pin the 40-hex commit sha (see the repo's history on the Hub)",
        )
    ]


def _check_dims(file: str, raw: dict[str, Any], out: list[Problem]) -> None:
    weights = _section(raw, "weights")
    group = weights.get("group_size", 128)
    base = _section(raw, "base")
    if not isinstance(group, int) or group <= 0:
        return
    for dim, size in _model_dims(base).items():
        if size % group:
            divisors = [g for g in (32, 64, 128, 256) if size % g == 0]
            out.append(
                Problem(
                    file,
                    "weights.group_size",
                    f"{group} does not divide the model's {dim} ({size})",
                    f"use one of {', '.join(map(str, divisors)) or 'channel'}",
                )
            )


def _check_template(file: str, raw: dict[str, Any], out: list[Problem]) -> None:
    """``card.template`` names a template in zoo's template folder, through the card package's one door
    to it (a name that is a path is refused here, before any stage runs, not only by ``zoo card``)."""
    template = _section(raw, "card").get("template")
    if template is None:
        return
    from zoo.card.check import template_file
    from zoo.errors import CardError

    try:
        template_file(template)
    except CardError as e:
        message, _, fix = str(e).partition("; fix: ")
        out.append(Problem(file, "card.template", message, fix or None))


def check_secrets(file: str, raw: dict[str, Any], out: list[Problem]) -> None:
    """No string of a recipe file looks like a token: every one is published (build.json, the card). Run on
    each file's own keys as it is read (``resolve_file``), so a token in a parent is reported once, against it."""
    from zoo.recipe.tokens import preview, secret_in, strings

    for field, text in strings({k: v for k, v in raw.items() if k != "extends"}):
        found = secret_in(text)
        if found:
            what, secret = found
            out.append(Problem(
                file, field, f"looks like {what} ({preview(secret)}); every recipe field is published",
                "remove it from the recipe (and revoke it if it was real); tokens belong in the environment, such as HF_TOKEN",
            ))  # fmt: skip


def check_own(path: Path, raw: dict[str, Any]) -> list[Problem]:
    """The checks that make sense on a file whose parents could not be read."""
    out: list[Problem] = []
    _check_names(str(path), path, raw, out)
    _check_method(str(path), raw, out)
    _check_template(str(path), raw, out)
    return out  # its secrets were checked as it was read


def _typed_params(raw: dict[str, Any]) -> dict[str, Any]:
    """``params`` parsed by its method's model, when the method is known and the section parses (else
    left as it is: ``_check_method`` reports each problem of it)."""
    method, params = raw.get("method"), raw.get("params")
    if not isinstance(method, str) or method not in METHODS or not isinstance(params, (dict, type(None))):
        return raw
    try:
        return {**raw, "params": METHODS.get(method).params(**(params or {}))}
    except (ValidationError, TypeError):
        return raw


def check(path: Path, raw: dict[str, Any]) -> tuple[Recipe | None, list[Problem]]:
    """Validate a merged recipe; returns the resolved ``Recipe`` (defaults filled) or the problems."""
    file = str(path)
    out: list[Problem] = []
    recipe: Recipe | None = None
    raw = _typed_params(raw)
    try:
        recipe = Recipe(**raw)
    except ValidationError as e:
        # a params mapping is checked against its method's model below, each key with its own problem
        mapping = isinstance(raw.get("params"), (dict, type(None)))
        out.extend(p for p in pydantic_problems(file, e, Recipe) if not (mapping and p.field.startswith("params")))
    except TypeError as e:  # keys that are not strings
        out.append(Problem(file, "", f"malformed recipe: {e}"))
    _check_names(file, path, raw, out)
    spec = _check_method(file, raw, out)
    _check_dims(file, raw, out)
    _check_lengths(file, raw, out)
    _check_template(file, raw, out)
    if out or recipe is None or spec is None:
        return None, out
    family = FAMILIES.get(recipe.family)
    resolved = recipe.model_copy(
        update={
            "weights": recipe.weights.model_copy(
                update={"symmetric": spec.symmetric if recipe.weights.symmetric is None else recipe.weights.symmetric}
            ),
            "format": recipe.format or spec.formats[0],
            "card": recipe.card.model_copy(update={"template": recipe.card.template or family.card}),
        }
    )
    return resolved, out
