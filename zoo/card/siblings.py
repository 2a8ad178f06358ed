"""The card's "other variants" table and the plot's points, rendered from the same base's Variants
(``zoo.variant``) that have something to show here: a build, an evaluation of that build, or a number
the study published.

The card's rules, which are presentation and so live here: every row shows the card's own primary
perplexity; where zoo has not measured a variant, the study's number stands in, marked "(study)" (or
"(paper)"), and is drawn hollow; a quick run's number is marked; a sibling's Hub repo is linked only
when it was published: by ``zoo push`` from this workdir (its ``push.json``), at the endpoint it went to,
or, given ``published`` (``zoo.variant.hub``: every release read back from the Hub), by any earlier
release, whose records then stand for the sibling unless this workdir holds a newer build of it
(``zoo.variant.read.merge``). The read model already dropped a sibling's eval.json of an earlier build
(shown as not evaluated).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.recipe import Recipe
from zoo.records import BuildRecord, EvalRecord
from zoo.variant.metrics import ZERO_SHOT_AVG
from zoo.variant.model import Variant
from zoo.variant.points import Point
from zoo.variant.read import assemble, merge, read
from zoo.variant.text import fmt, packed, quick
from zoo.workdir import Layout

if TYPE_CHECKING:
    from zoo.variant.hub import Published


def measured(workdir: Path, name: str) -> tuple[BuildRecord | None, EvalRecord | None]:
    """A variant's build record and the eval record of that very build (None for either when absent), as
    ``zoo.variant.read`` keeps them."""
    layout = Layout(workdir, name)
    build = BuildRecord.read(layout)
    ev = EvalRecord.read(layout) if build is not None else None
    return build, ev if ev is not None and ev.measured(layout) else None


def _row(v: Variant, this: bool, primary: str | None) -> dict[str, Any] | None:
    ppl, acc = v.value(primary), v.value(ZERO_SHOT_AVG)
    study_ppl = v.study(primary) if ppl is None else None  # the study stands in only for what zoo did not measure
    study_acc = v.study(ZERO_SHOT_AVG) if acc is None else None
    if not (this or v.built or v.evaluated or study_ppl is not None or study_acc is not None):
        return None
    tag = v.study_label
    size = v.size_bytes
    url = None if this else v.repo_url
    point = v.measured_point(primary) if ppl is not None else v.study_point(primary)
    return {
        "name": v.name,
        "method": v.method_title,
        "bits_label": v.bits_label,
        "size_text": packed(fmt(size / 1e6), v.packed) if size is not None else "not built here",
        "ppl_text": quick(fmt(ppl), v.limited)
        if ppl is not None
        else f"{fmt(study_ppl)} ({tag})"
        if study_ppl is not None
        else "not evaluated",
        "acc_text": quick(fmt(acc), v.limited)
        if acc is not None
        else f"{fmt(study_acc)}% ({tag})"
        if study_acc is not None
        else "not evaluated",
        "from_study": ppl is None and study_ppl is not None or study_acc is not None,
        "link": url is not None,
        "url": url,
        "this": this,
        "point": point,
    }


def family(recipe: Recipe, catalog: list[Recipe]) -> list[Recipe]:
    """Every catalog variant of the same base, this one included, in table order."""
    same = [r for r in catalog if r.base_name == recipe.base_name and r.name != recipe.name] + [recipe]
    return sorted(same, key=lambda x: (x.method, -x.weights.bits, x.name))


def table(this: Variant, catalog: list[Recipe], workdir: Path, published: Published | None = None) -> list[dict[str, Any]]:
    """Rows for this variant (its checked records, as given) and every sibling with something to show, each
    sibling from the workdir or, with ``published``, from its release where that is newer."""
    key = this.primary.key if this.primary else None
    rows = []
    for r in family(this.recipe, catalog):
        v = this if r.name == this.name else merge(read(r, workdir), published)
        row = _row(v, v is this, key)
        if row is not None:
            rows.append(row)
    return rows


def sibling_rows(
    recipe: Recipe,
    catalog: list[Recipe],
    workdir: Path,
    primary: str | None,
    build: BuildRecord | None,
    ev: EvalRecord | None,
    published: Published | None = None,
) -> list[dict[str, Any]]:
    """``table`` for this variant's records (``primary`` is the recipe's own; kept for callers that pass it)."""
    this = assemble(recipe, build, ev)
    if primary != (this.primary.key if this.primary else None):
        raise ValueError(f"{primary!r} is not {recipe.name}'s primary metric")
    return table(this, catalog, workdir, published)


def hidden_count(recipe: Recipe, catalog: list[Recipe], rows: list[dict[str, Any]]) -> int:
    """How many catalog variants of this base the table leaves out for having no data here."""
    return len(family(recipe, catalog)) - len(rows)


def plot_points(rows: list[dict[str, Any]]) -> list[Point]:
    """The table's weight-only variants with a perplexity, measured (filled, or a cross for a quick run) or,
    where zoo measured none, the study's (hollow)."""
    return [r["point"] for r in rows if r["point"] is not None]
