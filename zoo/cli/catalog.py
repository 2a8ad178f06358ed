"""``zoo list``, ``zoo show``, ``zoo validate``: the recipe catalog."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from zoo.cli import catalog_root, cli, emit, errors, json_option
from zoo.cli.table import table


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
@json_option
@click.pass_context
@errors
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """The fully resolved recipe NAME: inherited values and method defaults filled in."""
    from zoo.snapshot import resolved

    data = resolved(name, catalog_root(ctx))

    def text() -> str:
        import textwrap

        import yaml

        from zoo.fidelity import fidelity

        params = data.get("params")
        variant = params.get("variant") if isinstance(params, dict) else None
        note = fidelity(str(data.get("method", "")), str(variant) if variant else None)
        comment = [f"# {line}" for line in textwrap.wrap(f"fidelity: {note}", 100)] if note else []
        return "\n".join([yaml.safe_dump(data, sort_keys=False).rstrip(), *comment])  # a comment: still a recipe

    emit(data, text)


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
