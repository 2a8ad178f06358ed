"""``zoo site``: the static index of every variant (no torch needed: it reads records only)."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli import catalog_root, cli, emit, errors, json_option, resolve_workdir, workdir_option


@cli.command("site")
@workdir_option
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the site (default: <workdir>/_site).")
@click.option("--title", default="zoo", show_default=True, help="The site's name, in every page's heading.")
@json_option
@click.pass_context
@errors
def site_cmd(ctx: click.Context, workdir: str | None, out: Path | None, title: str, as_json: bool) -> None:
    """Write a static HTML index of every catalog variant (one page per base) from the workdir's records."""
    from zoo.catalog import siblings
    from zoo.site import site

    work = resolve_workdir(workdir)
    r = site(siblings(catalog_root(ctx)), work, out or work / "_site", title)
    emit(r, f"{r.out / 'index.html'}: {len(r.pages)} pages, {r.variants} variants ({r.built} built, {r.evaluated} evaluated)")
