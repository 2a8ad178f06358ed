"""``zoo list``, ``zoo show``, ``zoo validate``: the recipe catalog.

``zoo show`` adds what the workdir knows about the variant, when it has built it: its ``Variant``
(``zoo.variant``) as comment lines under the YAML (the text stays a recipe) and as ``variant`` in the
JSON. Without a build.json nothing more is read, so the catalog's answer stays as fast as before.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zoo.cli import catalog_root, cli, emit, errors, json_option, workdir_option
from zoo.cli.table import table

if TYPE_CHECKING:
    from zoo.variant.model import Variant


@cli.command("list")
@click.option("--family", help="llama3, llava-next, or a base such as llama3-70b / tiny-llama3.")
@click.option("--method", help="rtn, gptq, awq, smoothquant, quip, pbllm, billm, dbllm, slimllm, qlora, irqlora.")
@click.option("--bits", type=float, help="Weight bits, e.g. 4 or 1.1.")
@json_option
@click.pass_context
@errors
def list_cmd(ctx: click.Context, family: str | None, method: str | None, bits: float | None, as_json: bool) -> None:
    """The catalog, with which recipes can be built now."""
    from zoo.snapshot import listed

    rows = [dataclasses.asdict(e) for e in listed(catalog_root(ctx), family, method, bits)]
    emit(rows, lambda: table([{**r, "buildable": "yes" if r["buildable"] else "no"} for r in rows]))


@cli.command()
@click.argument("name")
@workdir_option
@json_option
@click.pass_context
@errors
def show(ctx: click.Context, name: str, workdir: str | None, as_json: bool) -> None:
    """The fully resolved recipe NAME: inherited values and method defaults filled in; and, once the workdir
    has built it, its status, size on disk, serving memory, runtimes and numbers."""
    from zoo.snapshot import resolved

    data = resolved(name, catalog_root(ctx))
    facts = _variant(ctx, name, workdir)
    if facts is not None:
        data = {**data, "variant": facts[0]}

    def text() -> str:
        import textwrap

        import yaml

        from zoo.fidelity import fidelity

        params = data.get("params")
        variant = params.get("variant") if isinstance(params, dict) else None
        note = fidelity(str(data.get("method", "")), str(variant) if variant else None)
        comment = [f"# {line}" for line in textwrap.wrap(f"fidelity: {note}", 100)] if note else []
        comment += [f"# {line}" for line in facts[1]] if facts else []
        recipe = {k: v for k, v in data.items() if k != "variant"}
        return "\n".join([yaml.safe_dump(recipe, sort_keys=False).rstrip(), *comment])  # comments: still a recipe

    emit(data, text)


def _variant(ctx: click.Context, name: str, workdir: str | None) -> tuple[dict[str, Any], list[str]] | None:
    """NAME's Variant in the workdir as (JSON, text lines); None when the workdir has no build of it (checked
    with one stat, so the catalog's answer imports nothing more)."""
    from zoo.workdir import DEFAULT

    if workdir is not None:
        from zoo.cli import resolve_workdir

        work = resolve_workdir(workdir)
    else:  # read only: $ZOO_WORKDIR or ./work as the stages would use them, without their write checks
        work = Path(os.environ.get("ZOO_WORKDIR") or DEFAULT)
    if not (work / name / "build.json").is_file():
        return None
    from zoo.catalog import load
    from zoo.variant.read import read

    return shown(read(load(name, catalog_root(ctx)), work), work)


def shown(v: Variant, work: Path) -> tuple[dict[str, Any], list[str]]:
    """What ``zoo show`` says about a built variant: sizes and memory of what a release publishes (the
    packed form when that is it, said so), the runtimes zoo bench saw serve the build, the numbers."""
    from zoo.untrusted import plain
    from zoo.variant.metrics import ZERO_SHOT_AVG
    from zoo.variant.text import fmt, packed, pct, quick
    from zoo.workdir import size_text

    size, memory = v.size_bytes, v.memory
    names = {"vllm": "vLLM"}
    runtimes = None if v.bench is None else [
        plain(f"{names.get(c.runtime, c.runtime)} {c.version or ''}".strip() + f" ({c.device})", 80) for c in v.served_by
    ]
    key = v.primary.key if v.primary else None
    numbers = {k: v.value(k) for k in (key, ZERO_SHOT_AVG) if k and v.value(k) is not None}
    data: dict[str, Any] = {
        "workdir": str(work),
        "status": v.status,
        "quick_run": v.limited,
        "packed": v.packed,
        "size_bytes": size,
        "stored_bits": v.stored_bits,
        "serving_memory_bytes": memory.total_bytes if memory else None,
        "kv_context": memory.context if memory and memory.kv_bytes is not None else None,
        "runs_with": runtimes,  # None: zoo bench has not run for this build
        "runs_with_form": ("16-bit" if v.packed else "published") if runtimes is not None else None,
        "metrics": numbers,
        "recovery": {k: v.recovery(k) for k in numbers},
    }
    lines = [f"in {plain(work, 200)}: {v.status}"]
    if size is not None:
        bits = f", {v.stored_bits:.2f} bits per weight" if v.stored_bits is not None else ""
        lines.append(f"size on disk: {packed(size_text(size), v.packed)}{bits}")
    if memory is not None:
        kv = f" with a bf16 KV cache of {memory.context} tokens" if memory.kv_bytes is not None else " (weights only)"
        lines.append(f"serving memory: {packed(size_text(memory.total_bytes), memory.packed)}{kv}")
    if runtimes is None:
        lines.append("runs with: not checked (zoo bench has not run for this build)")
    else:
        form = " (its 16-bit form: zoo pull --unpack)" if v.packed and runtimes else ""
        lines.append(f"runs with: {', '.join(runtimes) or 'none'} in zoo bench{form}")
    for k, value in numbers.items():
        kept = pct(v.recovery(k))
        label = v.primary.label if v.primary and k == v.primary.key else "zero-shot average"
        lines.append(f"{label}: {quick(fmt(value), v.limited)}" + (f", {kept} of 16-bit" if kept else ""))
    return data, lines


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH_OR_NAME]...")
@click.option("--strict", is_flag=True, help="Also require what a release needs: Hub bases pinned to a commit.")
@json_option
@click.pass_context
@errors
def validate(ctx: click.Context, paths: tuple[Path, ...], strict: bool, as_json: bool) -> None:
    """Check recipe files or catalog names (default: the whole catalog); every problem at once (exit 2 if any)."""
    from zoo.catalog import base_paths, find, recipe_paths
    from zoo.catalog import validate as check
    from zoo.errors import RecipeError
    from zoo.snapshot import catalog_problems

    if paths:  # a bare catalog name (no such file here) is the catalog's recipe of that name
        from zoo.recipe.schema import valid_name  # here only: the whole-catalog answer imports no pydantic

        paths = tuple(find(str(p), catalog_root(ctx)) if not p.exists() and valid_name(str(p)) else p for p in paths)
        problems = check(list(paths), strict)
    else:  # the whole catalog: answered from its snapshot when nothing changed
        root = catalog_root(ctx)
        paths = (*base_paths(root), *recipe_paths(root))
        problems = catalog_problems(root, strict)
    result = {"files": len(paths), "valid": not problems, "problems": problems}
    if problems:  # the error prints them; under --json the result carries them too, with the error added
        if as_json:
            emit(result)
        bad = len({os.path.realpath(p.file) for p in problems})
        raise RecipeError(problems, f"{len(problems)} problem(s) in {bad} of {len(paths)} file(s)")
    emit(result, f"{len(paths)} file(s) valid")
