"""The card's checks on recipes, run by ``zoo validate``: the recipe package knows nothing of cards.

A recipe names its card template by name; whether that template exists is a question for the card
package (templates ship inside it), so ``zoo.catalog.validate`` asks here, and ``render`` refuses a
missing template the same way at card time.
"""

from __future__ import annotations

from pathlib import Path

from zoo.errors import did_you_mean
from zoo.recipe import Problem, resolve_file


def templates() -> list[str]:
    from zoo.card.render import cards_dir

    return sorted(p.name.removesuffix(".md.j2") for p in cards_dir().glob("*.md.j2"))


def template_problems(path: Path) -> list[Problem]:
    """An unknown ``card.template`` in recipe file ``path`` (after ``extends``), with a did-you-mean."""
    raw = resolve_file(path, [])
    card = (raw or {}).get("card")
    template = card.get("template") if isinstance(card, dict) else None
    if not isinstance(template, str):
        return []
    known = templates()
    if template in known:
        return []
    hint = did_you_mean(template, known).removeprefix("; ") or None
    return [Problem(str(path), "card.template", f"unknown card template {template!r}", hint)]
