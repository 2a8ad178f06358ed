"""``zoo site``: a static HTML index of every catalog variant, from the workdir's records.

``rows.py`` renders each catalog variant's ``Variant`` (``zoo.variant``: build.json, eval.json and
bench.json of that build, push.json) as one row, never inventing a number: a variant not built or not
evaluated says so, and the study's figure sits in its own column. ``plot.py`` draws each family's
quality-vs-bits chart as inline SVG from the Variants' points; ``render.py`` writes ``index.html``,
one page per base from ``templates/`` (Jinja), with sorting and filtering in a few lines of plain
JavaScript and no network at view time, and ``variants.json`` (the rows). A new column is one key in
``rows.cells`` (from a Variant fact; a new fact goes on ``Variant`` first) and one header in
``templates/family.html.j2``.
"""

from zoo.site.render import SiteResult, site

__all__ = ["SiteResult", "site"]
