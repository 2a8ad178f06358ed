"""``zoo rehearse``: every stage of a release on a CPU, on shrunk copies of the real bases."""

from __future__ import annotations

import click

from zoo.cli import catalog_root, cli, emit, errors, json_option, require, resolve_workdir, workdir_option
from zoo.cli.table import table


@cli.command("rehearse")
@click.argument("names", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every recipe of the catalog (narrowed by --family / --method).")
@click.option("--family", help="With --all: llama3, llava-next, or a base such as llama3-70b.")
@click.option("--method", help="With --all: a method name, e.g. gptq.")
@workdir_option
@click.option("--limit", type=click.IntRange(min=1), default=2, show_default=True, help="Items per task and perplexity windows.")
@click.option("--push", is_flag=True, help="Push for real to the Hub at HF_ENDPOINT (never huggingface.co); default: a dry run.")
@json_option
@click.pass_context
@errors
def rehearse_cmd(
    ctx: click.Context,
    names: tuple[str, ...],
    every: bool,
    family: str | None,
    method: str | None,
    workdir: str | None,
    limit: int,
    push: bool,
    as_json: bool,
) -> None:
    """Rehearse NAME... (or --all): build -> eval -> card -> push on a shrunk base; exit 1 if any failed."""
    require("rehearse", "build", "eval")
    from zoo.catalog import entries, load, recipe_paths
    from zoo.errors import UsageError, ZooError
    from zoo.progress import reporter
    from zoo.recipe import load_recipe
    from zoo.rehearse import STAGES, rehearse

    if every == bool(names):
        raise UsageError("name the recipes to rehearse, or pass --all; fix: zoo rehearse NAME... or zoo rehearse --all")
    root, work = catalog_root(ctx), resolve_workdir(workdir)
    catalog = [load_recipe(p) for p in recipe_paths(root)]
    if every:
        chosen = {e.name for e in entries(root, family, method)}
        recipes = [r for r in catalog if r.name in chosen]
    else:
        recipes = [load(n, root) for n in names]
    results = rehearse(recipes, catalog, work, root, limit, push, reporter("rehearse"))
    rows = [
        {"recipe": r.name, **{s: r.stages.get(s, "") for s in STAGES}, "seconds": r.seconds, "error": r.error} for r in results
    ]
    emit([r.to_json() for r in results], lambda: table(rows))
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise ZooError(
            f"{len(failed)} of {len(results)} rehearsal(s) failed: {', '.join(failed)}; "
            "fix: see each one's error (the table's error column, or result[].error with --json), then run it again"
        )
