"""Small helpers every card module shares: number formatting and the labels a variant is known by."""

from __future__ import annotations

from typing import Any

from zoo.data import DATASETS
from zoo.recipe import Recipe


def dataset_title(name: str) -> str:
    """How a card names a dataset (the dataset table's title; the key itself for anything else)."""
    spec = DATASETS.get(name)
    return spec.title if spec else name


def fmt(v: Any) -> str:
    """How every number appears in a card (tests compare the table with eval.json through this)."""
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2e}"
    return str(v)


def bits_label(r: Recipe) -> str:
    w = f"W{r.weights.bits:g}"
    if r.activations:
        return f"{w}A{r.activations.bits}"
    return w + ("" if r.weights.group_size == "channel" else f" g{r.weights.group_size}")


def primary_metric(r: Recipe) -> str | None:
    """The perplexity a card leads with and plots: the recipe's first perplexity dataset."""
    return f"ppl/{r.eval.perplexity[0]}" if r.eval.perplexity else None


def ppl_name(r: Recipe) -> str:
    return dataset_title(r.eval.perplexity[0]) if r.eval.perplexity else ""


QUICK_RUN = "quick run"


def quick(text: str, limited: bool) -> str:
    """The one rule for numbers of a quick run (``zoo eval --limit``), wherever a number appears (card
    table, card plot, site, Collections notes): shown, and marked, since a few items can read anything."""
    return f"{text} ({QUICK_RUN})" if limited else text
