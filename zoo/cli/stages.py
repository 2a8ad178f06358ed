"""``zoo build``, ``zoo eval``, ``zoo card``: the stages, each on one recipe."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli import catalog_root, cli, device_option, errors, json_option, require, to_json, wait_option, workdir_option
from zoo.cli.table import table


@cli.command("build")
@click.argument("name")
@workdir_option
@device_option
@click.option("--force", is_flag=True, help="Rebuild even if an identical build is finished.")
@click.option(
    "--host-memory", type=click.FloatRange(min=0, min_open=True), help="GB of host RAM for weights; the rest spills to disk."
)
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line.")
@click.pass_context
@errors
def build_cmd(
    ctx: click.Context,
    name: str,
    workdir: Path | None,
    device: str,
    force: bool,
    host_memory: float | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Quantize recipe NAME into <workdir>/NAME/model with a build.json manifest."""
    require("build", "build")
    from zoo.build import build
    from zoo.catalog import load
    from zoo.workdir import workdir as default_workdir

    root = catalog_root(ctx)
    memory = int(host_memory * 1e9) if host_memory else None
    result = build(load(name, root), default_workdir(workdir), root, device, force, memory, wait)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        verb = "already built" if result.status == "skipped" else f"built in {result.seconds:.1f}s"
        click.echo(f"{result.name}: {verb}: {result.model_dir} ({result.total_bytes / 1e6:.1f} MB)")


@cli.command("eval")
@click.argument("name")
@workdir_option
@device_option
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per task and N perplexity windows (recorded as such).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Items per forward pass.")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True, help="lm-eval model backend.")
@click.option("--force", is_flag=True, help="Re-measure even if eval.json is current.")
@click.option("--allow-regression", is_flag=True, help="Exit 0 even when the recovery gate fails.")
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line.")
@click.pass_context
@errors
def eval_cmd(
    ctx: click.Context,
    name: str,
    workdir: Path | None,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str,
    force: bool,
    allow_regression: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Measure built recipe NAME and its 16-bit base; write <workdir>/NAME/eval.json."""
    require("eval", "eval")
    from zoo.catalog import load
    from zoo.evaluation.run import evaluate
    from zoo.workdir import workdir as default_workdir

    root = catalog_root(ctx)
    r = evaluate(
        load(name, root), default_workdir(workdir), root, device, limit, batch_size, force, allow_regression, backend, wait
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": r.name,
                    "status": r.status,
                    "eval_json": str(r.eval_json),
                    "metrics": r.metrics,
                    "recovery": r.recovery,
                    "gate_failed": list(r.gate_failed),
                }
            )
        )
        return
    data = json.loads(r.eval_json.read_text())
    base = data["baseline"]["metrics"]
    rows = [
        {"metric": k, "base": base.get(k), name: v, "recovery %": "n/a: base is 0" if base.get(k) == 0 else r.recovery.get(k)}
        for k, v in r.metrics.items()
    ]
    click.echo(table(rows))
    if r.gate_failed:
        click.echo(f"gate failed (allowed): {'; '.join(r.gate_failed)}", err=True)


@cli.command("card")
@click.argument("name")
@workdir_option
@click.option("--force", is_flag=True, help="Render even if the card is current.")
@wait_option
@json_option
@click.pass_context
@errors
def card_cmd(ctx: click.Context, name: str, workdir: Path | None, force: bool, wait: bool, as_json: bool) -> None:
    """Render the model card of NAME into <workdir>/NAME/card/ (README.md, plot, eval results)."""
    from zoo.card import render
    from zoo.catalog import load, siblings
    from zoo.workdir import workdir as default_workdir

    root = catalog_root(ctx)
    catalog = siblings(root)
    result = render(load(name, root), catalog, default_workdir(workdir), force, wait=wait)
    if as_json:
        click.echo(to_json(result))
        return
    click.echo(f"{result.name}: card {result.status}: {result.readme}")
