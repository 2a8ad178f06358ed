"""``zoo unpack``: a packed checkpoint (``<workdir>/<name>/packed``) back to the standard 16-bit one."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli import cli, emit, errors, json_option


@cli.command("unpack")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@json_option
@click.pass_context
@errors
def unpack_cmd(ctx: click.Context, src: Path, out: Path, as_json: bool) -> None:
    """Decode packed checkpoint SRC into OUT (new or empty): the 16-bit checkpoint the build's fake form holds,
    checked against the sha256 recorded at pack time (exit 10 on a mismatch, nothing written)."""
    from zoo.packed.store import unpack

    r = unpack(src, out)
    emit(r, f"{r['out']}: {r['tensors']} tensors, sha256 {r['unpacked_sha256'][:12]} verified")
