"""The card's "other variants" table and the plot's points: the same base's catalog variants that have
something to show here (a build, an evaluation of that build, or a number the study published).

A sibling's eval.json counts only when it measured the build that sits beside it now (its
``build_sha256`` equals the sha256 of the sibling's build.json); otherwise the sibling is shown as
not evaluated rather than with numbers of a checkpoint that no longer exists. A sibling's Hub repo
is linked only when ``zoo push`` published it from this workdir (its ``push.json``), at the endpoint
and repo it went to: a repo that was never pushed is never linked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zoo.card.common import bits_label, fmt, quick
from zoo.methods import METHODS
from zoo.recipe import Recipe
from zoo.records import BuildRecord, EvalRecord, PushRecord
from zoo.untrusted import link
from zoo.workdir import Layout

log = logging.getLogger(__name__)


def measured(workdir: Path, name: str) -> tuple[BuildRecord | None, EvalRecord | None]:
    """A sibling's build record and the eval record of that very build (None for either when absent)."""
    layout = Layout(workdir, name)
    build = BuildRecord.read(layout)
    if build is None:
        return None, None
    ev = EvalRecord.read(layout)
    if ev is not None and not ev.measured(layout):
        log.info("%s: eval.json measured an earlier build; shown as not evaluated", name)
        ev = None
    return build, ev


def _series(r: Recipe) -> str:
    """Method and grouping: W4 per channel and W4 g128 of one method are different curves."""
    title = METHODS.get(r.method).title
    if r.activations:
        return f"{title} (W/A)"
    return f"{title} ({'per channel' if r.weights.group_size == 'channel' else f'g{r.weights.group_size}'})"


def _row(
    r: Recipe, this: bool, primary: str | None, build: BuildRecord | None, ev: EvalRecord | None, pushed: PushRecord | None
) -> dict[str, Any] | None:
    metrics = ev.metrics if ev else {}
    ppl = metrics.get(primary) if primary else None
    study_ppl = getattr(r.study, primary.split("/", 1)[1], None) if primary and ppl is None else None
    acc = metrics.get("zero_shot_avg/acc")
    study_acc = r.study.zero_shot_avg if acc is None else None
    if not (this or build or ev or study_ppl is not None or study_acc is not None):
        return None
    size_mb = build.total_bytes / 1e6 if build else None
    tag = r.study.label  # "study", or "paper" for a cell only the method's own paper has
    limited = bool(ev and ev.limit)
    return {
        "name": r.name,
        "method": METHODS.get(r.method).title,
        "series": _series(r),
        "bits": r.weights.bits,
        "bits_label": bits_label(r),
        "built": build is not None,
        "evaluated": ev is not None,
        "size_mb": size_mb,
        "size_text": fmt(size_mb) if size_mb is not None else "not built here",
        "ppl": ppl if ppl is not None else study_ppl,
        "ppl_source": "zoo" if ppl is not None else "study" if study_ppl is not None else None,
        "ppl_text": quick(fmt(ppl), limited)
        if ppl is not None
        else f"{fmt(study_ppl)} ({tag})"
        if study_ppl is not None
        else "not evaluated",
        "ppl_recovery": ev.recovery.get(primary) if ev and ppl is not None and primary else None,
        "avg_acc": acc,
        "acc_text": quick(fmt(acc), limited)
        if acc is not None
        else f"{fmt(study_acc)}% ({tag})"
        if study_acc is not None
        else "not evaluated",
        "limited": limited,
        "from_study": ppl is None and study_ppl is not None or study_acc is not None,
        "repo_id": pushed.repo_id if pushed else r.repo_id,
        "link": repo_url(pushed) is not None and not this,
        "url": repo_url(pushed),
        "this": this,
    }


def repo_url(pushed: PushRecord | None) -> str | None:
    """The published repo's page, for a card or the site to link: only an ``http(s):`` URL on the endpoint
    it was pushed to (a push.json is a file anyone with the workdir can edit: no ``javascript:``, no userinfo)."""
    if pushed is None:
        return None
    return link(f"{pushed.endpoint.rstrip('/')}/{pushed.repo_id}", pushed.endpoint)


def family(recipe: Recipe, catalog: list[Recipe]) -> list[Recipe]:
    """Every catalog variant of the same base, this one included, in table order."""
    same = [r for r in catalog if r.base_name == recipe.base_name and r.name != recipe.name] + [recipe]
    return sorted(same, key=lambda x: (x.method, -x.weights.bits, x.name))


def sibling_rows(
    recipe: Recipe,
    catalog: list[Recipe],
    workdir: Path,
    primary: str | None,
    build: BuildRecord | None,
    ev: EvalRecord | None,
) -> list[dict[str, Any]]:
    """Rows for this variant (its checked records) and every sibling with something to show."""
    rows = []
    for r in family(recipe, catalog):
        this = r.name == recipe.name
        b, e = (build, ev) if this else measured(workdir, r.name)
        pushed = None if this or b is None else PushRecord.read(Layout(workdir, r.name))
        row = _row(r, this, primary, b, e, pushed)
        if row is not None:
            rows.append(row)
    return rows


def hidden_count(recipe: Recipe, catalog: list[Recipe], rows: list[dict[str, Any]]) -> int:
    """How many catalog variants of this base the table leaves out for having no data here."""
    return len(family(recipe, catalog)) - len(rows)


def plot_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weight-only variants with a perplexity (W/A variants sit on another axis of cost)."""
    return [
        {
            "name": r["name"],
            "series": r["series"],
            "bits": r["bits"],
            "value": r["ppl"],
            "recovery": r["ppl_recovery"],
            "measured": r["ppl_source"] == "zoo",
            "quick": r["limited"] and r["ppl_source"] == "zoo",
        }
        for r in rows
        if r["ppl"] is not None and r["ppl"] > 0 and "A" not in r["bits_label"]
    ]
