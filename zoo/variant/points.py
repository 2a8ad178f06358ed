"""Quality-vs-bits plot points, and the one rule both plots (the card's PNG, the site's SVG) use for
their quality axis: linear unless the values span more than ``LOG_SPAN`` times."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOG_SPAN = 3.0  # max/min beyond which a linear axis would squash the good variants into a line


@dataclass(frozen=True)
class Point:
    """One variant's perplexity at its weight bits: measured by zoo (``measured``; ``quick`` for a
    ``--limit`` run, with ``recovery`` of the 16-bit base) or published by the study."""

    name: str
    series: str
    bits: float
    value: float
    recovery: float | None
    measured: bool
    quick: bool

    @property
    def kind(self) -> str:
        """How a point is drawn: "zoo" filled, "quick" a cross, "study" hollow (both plots alike)."""
        return "quick" if self.quick else "zoo" if self.measured else "study"


def log_axis(values: Iterable[float]) -> bool:
    """Whether a quality axis over ``values`` (the points and any reference line) should be logarithmic."""
    vs = list(values)
    if not vs:
        return False
    lo, hi = min(vs), max(vs)
    return lo > 0 and hi / lo > LOG_SPAN
