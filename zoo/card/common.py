"""The names card modules share, from the read model (``zoo.variant``): number formatting, the quick-run
mark, the labels a variant is known by and its primary metric. Defined there once; here so the card's
modules and templates keep one import."""

from __future__ import annotations

from zoo.recipe import Recipe
from zoo.variant.metrics import dataset_title
from zoo.variant.model import bits_label, primary
from zoo.variant.text import QUICK_RUN, fmt, quick

__all__ = ["QUICK_RUN", "bits_label", "dataset_title", "fmt", "ppl_name", "primary_metric", "quick"]


def primary_metric(r: Recipe) -> str | None:
    """The key of the perplexity a card leads with and plots (``Variant.primary``)."""
    m = primary(r)
    return m.key if m else None


def ppl_name(r: Recipe) -> str:
    """That perplexity's dataset, as the card names it ("" when the recipe measures none)."""
    m = primary(r)
    return dataset_title(m.name) if m else ""
