"""The words every renderer shares, so one number reads the same on a card, the site, a Collection
note and ``zoo show``: how a number is written, how a quick run's number is marked, how a size says
that it is the packed form."""

from __future__ import annotations

from typing import Any

QUICK_RUN = "quick run"
PACKED = "packed"


def fmt(v: Any) -> str:
    """How every number appears (tests compare the card's table with eval.json through this)."""
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2e}"
    return str(v)


def quick(text: str, limited: bool) -> str:
    """The one rule for numbers of a quick run (``zoo eval --limit``), wherever a number appears: shown,
    and marked, since a few items can read anything."""
    return f"{text} ({QUICK_RUN})" if limited else text


def pct(v: float | None) -> str:
    """A recovery as the site and Collection notes write it; empty when there is none."""
    return f"{v:.1f}%" if v is not None else ""


def packed(text: str, is_packed: bool) -> str:
    """A size or memory figure of zoo's packed checkpoint says so: the 16-bit form is several times larger."""
    return f"{text} ({PACKED})" if is_packed else text
