"""Write the site: ``index.html`` (every base, with counts) and ``<base>.html`` (its variants' table and
chart), rendered from ``templates/`` into a staging folder swapped onto ``--out`` when whole.

The output folder is zoo's alone: an existing folder is replaced only when it holds the marker file a
previous ``zoo site`` wrote (``.zoo-site``), so pointing ``--out`` at a folder of one's own is refused
rather than emptied."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import UsageError
from zoo.recipe import Recipe
from zoo.site.plot import svg
from zoo.site.rows import Family, families
from zoo.workdir import staging

if TYPE_CHECKING:
    from zoo.variant.hub import Published

log = logging.getLogger(__name__)
MARKER = ".zoo-site"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class SiteResult:
    out: Path
    pages: tuple[str, ...]
    variants: int
    built: int
    evaluated: int
    published: int = 0
    unreadable: tuple[str, ...] = ()  # variants whose release on the Hub failed a check (each logged once)


def check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"{out} is not a folder; fix: pass --out a new folder, or one zoo site wrote before")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(
            f"{out} holds files zoo site did not write (no {MARKER}); nothing was changed; fix: pass --out a new or empty folder"
        )


def site(catalog: list[Recipe], workdir: Path, out: Path, title: str = "zoo", published: Published | None = None) -> SiteResult:
    """The site of ``catalog``: the workdir's records, and with ``published`` (``zoo.variant.hub.read_published``)
    every release on the Hub, merged by ``zoo.variant.read.merge``."""
    import jinja2

    from zoo import __version__

    check_out(out)
    fams = families(catalog, workdir, published)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    hub = _endpoint() if published is not None and published.reached else None
    common = {"title": title, "zoo_version": __version__, "made": made, "families": fams, "hub": hub}
    pages = ["index.html"]
    with staging(out) as tmp:
        (tmp / "index.html").write_text(env.get_template("index.html.j2").render(**common, family=None))
        for fam in fams:
            chart = svg(fam.points, f"{fam.base}: perplexity vs weight bits")
            page = env.get_template("family.html.j2").render(**common, family=fam, chart=chart)
            (tmp / f"{fam.slug}.html").write_text(page)
            pages.append(f"{fam.slug}.html")
        (tmp / "variants.json").write_text(json.dumps([r for f in fams for r in f.rows], indent=1) + "\n")
        (tmp / MARKER).write_text(f"written by zoo {__version__} at {made}\n")
    variants = sum(len(f.rows) for f in fams)
    unreadable = tuple(r["name"] for f in fams for r in f.rows if r["status"] == "unreadable")
    result = SiteResult(out, tuple(pages), variants, sum(f.built for f in fams), sum(f.evaluated for f in fams),
                        sum(f.published for f in fams), unreadable)  # fmt: skip
    log.info("site: %d pages, %d variants (%d published, %d built, %d evaluated) in %s", len(pages), result.variants,
             result.published, result.built, result.evaluated, out)  # fmt: skip
    return result


def _endpoint() -> str:
    from zoo.publish.hub import endpoint

    return endpoint()


__all__ = ["Family", "SiteResult", "site"]
