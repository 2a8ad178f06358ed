"""``zoo site``: a static HTML index of every catalog variant, from the workdir's records.

``rows.py`` turns the catalog and the workdir (build.json, eval.json of that build, push.json) into
one row per variant, never inventing a number: a variant not built or not evaluated says so, and the
study's figure sits in its own column. ``plot.py`` draws each family's quality-vs-bits chart as inline
SVG; ``render.py`` writes ``index.html`` and one page per base from ``templates/`` (Jinja), with
sorting and filtering in a few lines of plain JavaScript and no network at view time. A new column is
one key in ``rows.row`` and one header in ``templates/family.html.j2``.
"""

from zoo.site.render import SiteResult, site

__all__ = ["SiteResult", "site"]
