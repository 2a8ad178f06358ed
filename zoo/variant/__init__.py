"""The read model: what zoo knows about one variant, typed, derived once, rendered by everyone.

- ``metrics.py``: the ``Metric`` table. A metric key is ``group/name`` (``ppl/wikitext2``,
  ``arc_easy/acc``, ``zero_shot_avg/acc``); its group decides its label, whether lower or higher is
  better and how it is aggregated. Every key built or split anywhere goes through it.
- ``model.py``: ``Variant``, a frozen dataclass of the recipe, the records that describe the build
  beside it (build, eval, bench, push) and every fact derived from them: bits stored, the size of
  what a release publishes (packed or not), serving memory, recovery, the quick-run flag, status, the
  runtimes that served it and its points for the quality-vs-bits plots.
- ``read.py``: building Variants, from a workdir (``read``) or from records read anywhere else
  (``assemble``, e.g. records pulled from the Hub).
- ``points.py``: a plot point and the one rule for when a quality axis turns logarithmic.
- ``text.py``: the few words every renderer shares so a number reads the same on a card, the site and
  a Collection note (number format, the quick-run mark).

Renderers (``zoo.card``, ``zoo.site``, ``zoo.publish.collections``, ``zoo show``) read Variants and
decide presentation themselves (e.g. when the study's number stands in for a missing measurement).

Adding a derived fact: a ``cached_property`` on ``Variant`` computed from its fields (never from the
disk: ``read.py`` is the only reader), a case in ``tests/test_variant.py``, then the renderers that
show it. Adding a record: a field on ``Variant`` and an argument of ``read.assemble``.

This ``__init__`` imports nothing, so ``zoo.records`` and the evaluation can use ``metrics`` without
an import cycle; import from the submodules (``from zoo.variant.model import Variant``).
"""
