"""``zoo plan``: what each stage of a release needs and how it fits a machine; ``zoo baseline``: the
16-bit base measured once, before the variants (the release workflow's first GPU job per base)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from zoo.cli import (
    catalog_root,
    cli,
    device_option,
    emit,
    errors,
    json_option,
    require,
    resolve_workdir,
    wait_option,
    workdir_option,
)
from zoo.cli.table import table
from zoo.errors import UsageError

GB = click.FloatRange(min=0, min_open=True)


def _this_host() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _free_disk(workdir: Path) -> int:
    path = workdir.absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


@cli.command("plan")
@click.argument("names", nargs=-1)
@click.option("--family", help="llama3, llava-next, or a base such as llama3-70b.")
@click.option("--method", help="A method name, e.g. gptq.")
@click.option("--runner", "runner_name", help="Plan for one of zoo's runner classes (e.g. gpu-80gb-x2) instead of a machine.")
@click.option("--gpus", type=click.IntRange(min=0), help="GPUs on the machine (default: 1 with --gpu-memory, else 0).")
@click.option("--gpu-memory", type=GB, help="GB of memory per GPU.")
@click.option("--host-memory", type=GB, help="GB of host RAM (default: this machine's).")
@click.option("--disk", type=GB, help="GB of free disk for the workdir and HF cache (default: free space at the workdir).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="The eval's --batch-size.")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True, help="The eval's --backend.")
@workdir_option
@json_option
@click.pass_context
@errors
def plan_cmd(
    ctx: click.Context,
    names: tuple[str, ...],
    family: str | None,
    method: str | None,
    runner_name: str | None,
    gpus: int | None,
    gpu_memory: float | None,
    host_memory: float | None,
    disk: float | None,
    batch_size: int,
    backend: str,
    workdir: str | None,
    as_json: bool,
) -> None:
    """Peak GPU, host and disk bytes of every stage of NAME... and the placement that fits; exit 13 when a
    stage fits nowhere on the machine. Without machine options: each recipe on its smallest release runner."""
    from zoo.catalog import entries, load
    from zoo.plan import RUNNERS, Machine, describe, notes, plan

    root = catalog_root(ctx)
    rows = entries(root, family, method)
    if names:  # each name checked (did-you-mean), then narrowed by --family / --method
        wanted = {load(n, root).name for n in names}
        rows = [r for r in rows if r.name in wanted]
    chosen = [load(r.name, root) for r in rows]
    machine: Machine | None = None
    if runner_name is not None:
        found = {r.name: r for r in RUNNERS}
        if runner_name not in found:
            from zoo.errors import UnknownNameError

            raise UnknownNameError("runner class", runner_name, found)
        machine = found[runner_name].machine
    elif any(v is not None for v in (gpus, gpu_memory, host_memory, disk)):
        n = gpus if gpus is not None else (1 if gpu_memory else 0)
        if n and not gpu_memory:
            raise UsageError(f"--gpus {n} without --gpu-memory; fix: give each GPU's memory in GB, e.g. --gpu-memory 80")
        machine = Machine(
            n,
            int((gpu_memory or 0) * 1e9),
            int(host_memory * 1e9) if host_memory else _this_host(),
            int(disk * 1e9) if disk else _free_disk(resolve_workdir(workdir)),
        )
    plans = plan(chosen, root, machine, batch_size, backend)
    emit({"plans": plans}, lambda: "\n".join([table([row for p in plans for row in describe(p)]), *notes(plans)]))


@cli.command("baseline")
@click.argument("names", nargs=-1, required=True)
@workdir_option
@device_option
@click.option("--limit", type=click.IntRange(min=1), help="As zoo eval's --limit (a baseline is kept per limit).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="As zoo eval's --batch-size.")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True, help="As zoo eval's --backend.")
@click.option("--host-memory", type=GB, help="GB of host RAM for weights; the rest is offloaded to disk.")
@click.option(
    "--push", is_flag=True,
    help="Also share each baseline in the Hub store of baselines (<org>/zoo-baselines or $ZOO_BASELINE_REPO), "
    "for every other machine; needs a token that may write it.",
)  # fmt: skip
@wait_option
@json_option
@click.pass_context
@errors
def baseline_cmd(
    ctx: click.Context,
    names: tuple[str, ...],
    workdir: str | None,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str,
    host_memory: float | None,
    push: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Measure the 16-bit base of each NAME once (cached in <workdir>/_baselines/, which zoo eval reads)."""
    require("baseline", "eval")
    from zoo.catalog import load
    from zoo.evaluation.run import measure_baselines

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    memory = int(host_memory * 1e9) if host_memory else None
    recipes = [load(n, root) for n in names]
    done = measure_baselines(recipes, work, root, device, limit, batch_size, backend, memory, wait, share=push)
    emit(done, lambda: table([{"recipe": k, "baseline": str(v)} for k, v in done.items()]))
