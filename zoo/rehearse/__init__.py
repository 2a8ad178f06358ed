"""Rehearsal: every stage of a release, on a CPU, before any GPU time is spent.

``shrink.py`` turns a recipe's real base (its config, tokenizer and processor at the pinned revision)
into a two-layer random-weight model of the same architecture; ``run.py`` runs build -> eval -> card
-> push on it with the recipe's real method and data loaders and reports each stage. A new family
works here when ``shrink.shrink_config`` knows its config's shape.
"""

from zoo.rehearse.run import STAGES, Rehearsal, rehearse

__all__ = ["STAGES", "Rehearsal", "rehearse"]
