"""Model cards: ``context.py`` gathers what a card says (``siblings.py`` the other variants of the same
base, ``common.py`` shared formatting), ``render.py`` checks the build and eval are current and renders
``cards/*.md.j2`` through huggingface_hub's card API, ``plot.py`` draws quality vs bits.

Adding a family's card: a ``cards/<name>.md.j2`` that ``{% extends "base.md.j2" %}`` and overrides the
blocks it needs (usually ``usage``); set ``card=`` in the family's spec.
"""

from zoo.card.render import CardResult, render

__all__ = ["CardResult", "render"]
