"""``zoo site``: the static index of every variant (no torch needed: it reads records only).

``from_hub_option`` is the one ``--from-hub/--local-only`` switch: every command that renders other variants
(the site, a card's sibling table, Collection notes) reads the published ones the same way."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli import catalog_root, cli, emit, errors, json_option, resolve_workdir, workdir_option

from_hub_option = click.option(
    "--from-hub/--local-only",
    "from_hub",
    default=None,
    help="Include every variant published on the Hub (read back: records only, never weights), or only this "
    "workdir's. Default: the Hub unless HF_HUB_OFFLINE is set; an unreachable Hub gives a warning and the workdir's.",
)


@cli.command("site")
@workdir_option
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the site (default: <workdir>/_site).")
@click.option("--title", default="zoo", show_default=True, help="The site's name, in every page's heading.")
@from_hub_option
@json_option
@click.pass_context
@errors
def site_cmd(ctx: click.Context, workdir: str | None, out: Path | None, title: str, from_hub: bool | None, as_json: bool) -> None:
    """Write a static HTML index of every catalog variant (one page per base): the workdir's records and, unless
    --local-only, every published variant's."""
    from zoo.catalog import siblings
    from zoo.site import site
    from zoo.variant.hub import read_published

    work = resolve_workdir(workdir)
    catalog = siblings(catalog_root(ctx))
    r = site(catalog, work, out or work / "_site", title, read_published(catalog, work, from_hub))
    emit(r, f"{r.out / 'index.html'}: {len(r.pages)} pages, {r.variants} variants ({r.published} published, {r.built} "
            f"built, {r.evaluated} evaluated)")  # fmt: skip
