"""A family's quality-vs-bits chart as inline SVG (no image files, no scripts, no network): perplexity
against weight bits, one colour per method and grouping; zoo's measurements filled, the study's hollow,
quick runs a cross. The points are the Variants' own (``zoo.variant.points``): both the measured and
the published number of a variant are drawn. The scale turns logarithmic by the card's rule
(``points.log_axis``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from zoo.variant.points import Point, log_axis

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 320, 56, 180, 16, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def svg(pts: Sequence[Point], title: str) -> str | None:
    if len(pts) < 2:
        return None
    values = [p.value for p in pts]
    lo, hi = min(values), max(values)
    log = log_axis(values)

    def f(v: float) -> float:
        return math.log10(v) if log else float(v)

    y0, y1 = f(lo), f(hi)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    bits = sorted({p.bits for p in pts})
    b0, b1 = float(min(bits[0], 1)), float(max(bits[-1], 8))

    def x(b: float) -> float:
        return PAD_L + (b - b0) / (b1 - b0) * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return PAD_T + (1 - (f(v) - y0) / (y1 - y0)) * (H - PAD_T - PAD_B)

    series = sorted({p.series for p in pts})
    colour = {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(series)}
    parts = [
        f'<svg class="plot" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="axis"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" class="axis"/>',
    ]
    for b in range(int(b0), int(b1) + 1):
        parts.append(f'<text x="{x(b):.1f}" y="{H - PAD_B + 16}" class="tick" text-anchor="middle">{b}</text>')
    parts.append(f'<text x="{(PAD_L + W - PAD_R) / 2:.1f}" y="{H - 6}" class="tick" text-anchor="middle">weight bits</text>')
    for v in (lo, (lo * hi) ** 0.5 if log else (lo + hi) / 2, hi):
        parts.append(f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.3g}</text>')
    for p in pts:
        c = colour[p.series]
        fill = c if p.measured else "none"
        what = {"quick": "zoo, quick run", "zoo": "zoo", "study": "study"}[p.kind]
        cx, cy, label = x(p.bits), y(p.value), f"<title>{escape(p.name)}: {p.value:.4g} ({what})</title>"
        if p.quick:  # a cross, as in the card's plot: a few items, not a measurement to compare
            d = f"M{cx - 5:.1f} {cy - 5:.1f}L{cx + 5:.1f} {cy + 5:.1f}M{cx - 5:.1f} {cy + 5:.1f}L{cx + 5:.1f} {cy - 5:.1f}"
            parts.append(f'<path d="{d}" stroke="{c}" stroke-width="2">{label}</path>')
        else:
            circle = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" stroke="{c}" stroke-width="2">'
            parts.append(f"{circle}{label}</circle>")
    for i, s in enumerate(series):
        ly = PAD_T + 8 + i * 18
        parts.append(f'<circle cx="{W - PAD_R + 14}" cy="{ly}" r="5" fill="{colour[s]}"/>')
        parts.append(f'<text x="{W - PAD_R + 24}" y="{ly + 4}" class="tick">{escape(s)}</text>')
    ly = PAD_T + 8 + len(series) * 18 + 6
    key = "filled: zoo, hollow: study" + (", cross: quick run" if any(p.quick for p in pts) else "")
    parts.append(f'<text x="{W - PAD_R + 8}" y="{ly + 4}" class="tick">{key}</text>')
    parts.append("</svg>")
    return "".join(parts)
