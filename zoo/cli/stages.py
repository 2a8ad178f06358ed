"""``zoo build``, ``zoo eval``, ``zoo card``: the stages, each on one recipe."""

from __future__ import annotations

import click

from zoo.cli import (
    Choice,
    catalog_root,
    cli,
    device_option,
    emit,
    errors,
    gigabytes,
    host_memory_option,
    json_option,
    require,
    resolve_workdir,
    wait_option,
    workdir_option,
)
from zoo.cli.site import from_hub_option
from zoo.cli.table import table
from zoo.pipeline.options import RunOptions
from zoo.workdir import Layout

LINE_HELP = "One JSON summary line on stdout instead of text; an error too ({error, fix, exit})."


@cli.command("build")
@click.argument("name")
@workdir_option
@device_option
@click.option("--force", is_flag=True, help="Rebuild even if an identical build is finished.")
@host_memory_option
@wait_option
@click.option("--json", "as_json", is_flag=True, help=LINE_HELP)
@click.pass_context
@errors
def build_cmd(
    ctx: click.Context,
    name: str,
    workdir: str | None,
    device: str,
    force: bool,
    host_memory: float | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Quantize recipe NAME into <workdir>/NAME/model with a build.json manifest."""
    require("build", "build")
    from zoo.catalog import load
    from zoo.quantize import build_stage

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    recipe = load(name, root)
    options = RunOptions(recipes=root, device=device, force=force, host_memory=gigabytes(host_memory), wait=wait)
    result = build_stage(recipe, Layout(work, recipe.name), options)
    verb = "already built" if result.status == "skipped" else f"built in {result.seconds:.1f}s"
    size = f"{result.total_bytes / 1e6:.1f} MB to publish"  # a native method publishes packed/, a fraction of model/
    emit(result.to_json(), f"{result.name}: {verb}: {result.model_dir} ({size})", line=True)


@cli.command("eval")
@click.argument("name")
@workdir_option
@device_option
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per task and N perplexity windows (recorded as such).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Items per forward pass.")
@click.option("--backend", type=Choice(["hf", "vllm"]), default="hf", show_default=True, help="lm-eval model backend.")
@click.option("--force", is_flag=True, help="Re-measure even if eval.json is current.")
@click.option("--allow-regression", is_flag=True, help="Exit 0 even when the recovery gate fails.")
@host_memory_option
@wait_option
@click.option("--json", "as_json", is_flag=True, help=LINE_HELP)
@click.pass_context
@errors
def eval_cmd(
    ctx: click.Context,
    name: str,
    workdir: str | None,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str,
    force: bool,
    allow_regression: bool,
    host_memory: float | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Measure built recipe NAME and its 16-bit base; write <workdir>/NAME/eval.json."""
    require("eval", "eval")
    from zoo.catalog import load
    from zoo.evaluation.run import eval_stage
    from zoo.records import EvalRecord

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    recipe = load(name, root)
    layout = Layout(work, recipe.name)
    options = RunOptions(
        recipes=root, device=device, limit=limit, batch_size=batch_size, backend=backend, force=force,
        allow_regression=allow_regression, host_memory=gigabytes(host_memory), wait=wait,
    )  # fmt: skip
    r = eval_stage(recipe, layout, options)

    def text() -> str:
        base = EvalRecord.require(layout).baseline.metrics
        return table([
            {"metric": k, "base": base.get(k), name: v, "recovery %": "n/a: base is 0" if base.get(k) == 0 else r.recovery.get(k)}
            for k, v in r.metrics.items()
        ])  # fmt: skip

    summary = {"name": r.name, "status": r.status, "eval_json": str(r.eval_json), "metrics": r.metrics,
               "recovery": r.recovery, "gate_failed": list(r.gate_failed)}  # fmt: skip
    emit(summary, text, line=True)
    if r.gate_failed and not as_json:
        click.echo(f"gate failed (allowed): {'; '.join(r.gate_failed)}", err=True)


@cli.command("card")
@click.argument("name")
@workdir_option
@click.option("--force", is_flag=True, help="Render even if the card is current.")
@from_hub_option
@wait_option
@json_option
@click.pass_context
@errors
def card_cmd(
    ctx: click.Context, name: str, workdir: str | None, force: bool, from_hub: bool | None, wait: bool, as_json: bool
) -> None:
    """Render the model card of NAME into <workdir>/NAME/card/ (README.md, plot, eval results)."""
    from zoo.catalog import load
    from zoo.pipeline.stages import by_name

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    recipe = load(name, root)
    options = RunOptions(recipes=root, force=force, wait=wait, from_hub=from_hub)
    result = by_name("card").run(recipe, Layout(work, recipe.name), options)
    emit(result, f"{result.name}: card {result.status}: {result.readme}")
