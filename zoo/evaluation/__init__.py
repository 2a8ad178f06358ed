"""Evaluation: the study's perplexity (``perplexity.py``), lm-eval tasks (``harness.py``, with zoo's
own offline task data in ``data/``), lmms-eval tasks (``vision.py``) and the eval stage with baseline,
recovery and gate (``run.py``). Tasks by name live in ``zoo.tasks`` (one table for recipes, harnesses
and cards); adding one is a line there.
"""

from __future__ import annotations

from zoo.tasks import TASKS, TaskSpec

__all__ = ["TASKS", "TaskSpec"]
