"""The card's plot: perplexity against weight bits for every method on the same base, this variant
marked. Measured values (sibling eval.json files) are solid markers, the study's published values
hollow ones, so a reader sees at once which points this zoo measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(points: list[dict[str, Any]], metric: str, this: str, out: Path, baseline: float | None = None) -> list[str]:
    """Write a PNG to ``out``; returns the series drawn (method titles), for tests and alt text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    series: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        series.setdefault(p["method"], []).append(p)
    for method, pts in sorted(series.items()):
        pts = sorted(pts, key=lambda p: p["bits"])
        line = ax.plot([p["bits"] for p in pts], [p["value"] for p in pts], "-", label=method, alpha=0.8)[0]
        for p in pts:
            face = line.get_color() if p["measured"] else "none"
            ax.plot(p["bits"], p["value"], "o", color=line.get_color(), markerfacecolor=face)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label="16-bit base (measured)")
    mine = [p for p in points if p["name"] == this]
    if mine:
        ax.plot(mine[0]["bits"], mine[0]["value"], "*", color="black", markersize=16, label=f"this model ({this})")
    ax.set_xlabel("weight bits")
    ax.set_ylabel(f"{metric} perplexity (log scale)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Quality vs bits (filled: measured by zoo, hollow: published by the study)", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return sorted(series)
