"""``zoo bench``: the serving check and the speed / memory axis of one built recipe."""

from __future__ import annotations

import click

from zoo.cli import catalog_root, cli, device_option, emit, errors, require, resolve_workdir, wait_option, workdir_option
from zoo.cli.table import table

LINE_HELP = "One JSON summary line on stdout instead of text; an error too ({error, fix, exit})."


@cli.command("bench")
@click.argument("name")
@workdir_option
@device_option
@click.option("--force", is_flag=True, help="Re-measure even if bench.json is current.")
@click.option("--no-speed", "no_speed", is_flag=True, help="Only the serving check: no timing of the variant and its base.")
@wait_option
@click.option("--json", "as_json", is_flag=True, help=LINE_HELP)
@click.pass_context
@errors
def bench_cmd(
    ctx: click.Context, name: str, workdir: str | None, device: str, force: bool, no_speed: bool, wait: bool, as_json: bool
) -> None:
    """Serve built recipe NAME in every runtime found (transformers; vLLM via $ZOO_VLLM_PYTHON), compare each
    with transformers and time it against its 16-bit base; write <workdir>/NAME/bench.json."""
    require("bench", "eval")
    from zoo.catalog import load
    from zoo.serving import bench

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    r = bench(load(name, root), work, root, device, force, not no_speed, wait)

    def text() -> str:
        rows = []
        for c in r.record.runtimes:
            s, b = c.speed.get("variant"), c.speed.get("base")
            rows.append({
                "runtime": f"{c.runtime} {c.version or ''}".strip(), "device": c.device, "status": c.status,
                "ppl vs transformers": None if c.ppl_rel_diff is None else f"{c.ppl_rel_diff:.2%}",
                "decode tok/s b1": s.decode_tokens_per_s_b1 if s else None,
                "x 16-bit": s.decode_tokens_per_s_b1 / b.decode_tokens_per_s_b1 if s and b else None,
                "reason": c.reason or "",
            })  # fmt: skip
        verb = "already benchmarked" if r.status == "skipped" else "benchmarked"
        return f"{r.name}: {verb} ({r.record.scheme}): {r.bench_json}\n{table(rows)}"

    emit({"name": r.name, "status": r.status, "bench_json": str(r.bench_json), "record": r.record}, text, line=True)
