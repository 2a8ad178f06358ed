"""The card's plot: quality against weight bits for the variants of one base, this variant starred.

Honesty rules, since a plot is read at a glance: nothing is drawn from fewer than two points (the card
says so instead); when every point has a measured recovery the y axis is recovery % of the 16-bit
base (comparable across bits and methods), otherwise raw perplexity; the axis is linear unless the
values span more than ``zoo.variant.points.LOG_SPAN`` times (the site's chart follows the same rule),
with plain tick labels, and never zoomed in so far that a fraction of a percent fills the height;
points measured by zoo are filled, quick runs (`--limit`) crosses and the study's hollow;
the legend names only what is drawn and the title describes only what is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from zoo.variant.points import Point, log_axis

MIN_SPAN = 0.05  # the y range covers at least 5% of the values' magnitude


def _plain(v: float) -> str:
    """Tick text a reader takes in at once: 20, 56.3, 1,000,000 (never 5.634x10^1 or 1e+06)."""
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"


def _limits(lo: float, hi: float) -> tuple[float, float]:
    """A linear range that shows differences at their true relative size."""
    span = max(hi - lo, MIN_SPAN * max(abs(hi), abs(lo)), 1e-9)
    mid = (hi + lo) / 2
    return mid - 0.6 * span, mid + 0.6 * span


def plot(
    points: list[Point], metric: str, this: str, base_name: str, out: Path, baseline: float | None = None
) -> dict[str, Any] | None:
    """Write a PNG to ``out`` and describe what it shows; None (and no file) with fewer than two points.

    ``points`` are the card's (``siblings.plot_points``): a recovery on measured ones only. ``baseline`` is
    the 16-bit base's measured perplexity, drawn only on a perplexity axis."""
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    recovery = all(p.recovery is not None for p in points)
    ys = {p.name: float(p.recovery if recovery and p.recovery is not None else p.value) for p in points}
    reference = 100.0 if recovery else baseline
    span = [*ys.values(), *([reference] if reference is not None else [])]
    lo, hi = min(span), max(span)
    log = log_axis(span)

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    series: dict[str, list[Point]] = {}
    for p in points:
        series.setdefault(p.series, []).append(p)
    for name, pts in sorted(series.items()):
        pts = sorted(pts, key=lambda p: p.bits)
        color = None
        if len(pts) > 1:
            color = ax.plot([p.bits for p in pts], [ys[p.name] for p in pts], "-", alpha=0.6)[0].get_color()
        labelled = False
        for kind in ("zoo", "study", "quick"):  # filled, hollow, a cross: the site's plot draws the same
            group = [p for p in pts if p.kind == kind]
            if not group:
                continue
            kw: dict[str, Any] = {"color": color} if color else {}
            marker = ax.plot(
                [p.bits for p in group],
                [ys[p.name] for p in group],
                "x" if kind == "quick" else "o",
                zorder=3,
                markerfacecolor="none" if kind == "study" else None,
                label=None if labelled else name,
                **kw,
            )[0]
            color, labelled = marker.get_color(), True
            if kind == "zoo":
                marker.set_markerfacecolor(color)
    if reference is not None:
        ref_label = "16-bit base (100%)" if recovery else "16-bit base (measured by zoo)"
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=ref_label)
    mine = [p for p in points if p.name == this]
    if mine:
        # an outline drawn over the points: a sibling at the same bits and a close value stays visible inside it
        ax.plot(mine[0].bits, ys[this], "*", color="black", markerfacecolor="none", markersize=18, markeredgewidth=1.2,
                zorder=4, label=f"this model ({this})")  # fmt: skip

    plain = FuncFormatter(lambda v, _pos: _plain(v))
    if log:
        ax.set_yscale("log")
        subs = (1.0, 2.0, 5.0) if math.log10(hi / lo) <= 2 else (1.0,)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(*_limits(lo, hi))
    ax.yaxis.set_major_formatter(plain)
    bits = sorted({float(p.bits) for p in points})
    ax.set_xticks(bits)
    pad = 0.05 * (bits[-1] - bits[0]) + 0.3
    ax.set_xlim(bits[0] - pad, bits[-1] + pad)
    ax.xaxis.set_major_formatter(plain)
    ax.set_xlabel("weight bits")
    ylabel = "perplexity recovery, % of 16-bit base" if recovery else "perplexity (lower is better)"
    ax.set_ylabel(ylabel + (", log scale" if log else ""), fontsize=8)
    ax.grid(True, alpha=0.3)
    legend_box = ax.legend(fontsize=7)
    n_zoo = sum(1 for p in points if p.measured)
    n_quick = sum(1 for p in points if p.kind == "quick")
    n_study = len(points) - n_zoo
    parts = [f"{n_zoo - n_quick} measured by zoo (filled)"] if n_zoo - n_quick else []
    parts += [f"{n_quick} quick run{'s' if n_quick != 1 else ''} (cross)"] if n_quick else []
    parts += [f"{n_study} published by the study (hollow)"] if n_study else []
    what = "perplexity recovery" if recovery else "perplexity"
    title = f"{metric} {what} vs weight bits, variants of {base_name}\n{', '.join(parts)}"
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", metadata={"Software": None})  # draws: the tick labels below are final
    ylim = [float(v) for v in ax.get_ylim()]
    yticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text() and ylim[0] <= t.get_position()[1] <= ylim[1]]
    legend = [t.get_text() for t in legend_box.get_texts()]
    plt.close(fig)
    return {
        "series": sorted(series),
        "y": "recovery %" if recovery else "perplexity",
        "scale": "log" if log else "linear",
        "ylim": ylim,
        "yticks": yticks,
        "legend": legend,
        "title": title,
        "measured": n_zoo,
        "study": n_study,
    }
