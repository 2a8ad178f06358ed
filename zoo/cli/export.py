"""``zoo export``: a built recipe as a GGUF or MLX file, only where it holds the build's weights exactly."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli import Choice, catalog_root, cli, emit, errors, json_option, require, resolve_workdir, wait_option, workdir_option


@cli.command("export")
@click.argument("name")
@click.option("--to", "fmt", type=Choice(["gguf", "mlx"]), required=True, help="The format: gguf (llama.cpp) or mlx (mlx-lm).")
@workdir_option
@click.option("--out", type=click.Path(path_type=Path), help="Write here instead of <workdir>/NAME/export/FORMAT/.")
@click.option("--force", is_flag=True, help="Write again even if the export is of the current build.")
@wait_option
@json_option
@click.pass_context
@errors
def export_cmd(
    ctx: click.Context, name: str, fmt: str, workdir: str | None, out: Path | None, force: bool, wait: bool, as_json: bool
) -> None:
    """Write built recipe NAME as FORMAT, proven to decode to the build's own weights bit for bit; a scheme the
    format cannot hold exactly is refused (exit 2) with the tensor and the reason, and nothing is written."""
    require("export", "build")
    from zoo.catalog import load
    from zoo.export.run import export

    r = export(load(name, catalog_root(ctx)), resolve_workdir(workdir), fmt, out, force, wait)
    kinds = sorted(set(r.record.types.values()))
    verb = "already exported" if r.status == "skipped" else "exported"
    emit(
        {"name": r.name, "status": r.status, "folder": str(r.folder), "record": r.record},
        f"{r.name}: {verb} to {fmt} ({', '.join(kinds)}): {r.folder}; {r.record.exactness['tensors']} tensors "
        f"equal to the build's bit for bit ({r.record.exactness['reader']})",
    )
