"""Evaluation: tasks by name (this file), the study's perplexity (``perplexity.py``), lm-eval tasks
(``harness.py``, with zoo's own offline task data in ``data/``), lmms-eval tasks (``vision.py``) and
the eval stage with baseline, recovery and gate (``run.py``).

Adding a task: one ``TaskSpec`` line in ``TASKS``; ``harness`` says which evaluation harness runs it.
For offline runs, its lm-eval file goes in ``harness.TASK_FILES`` and its data in ``data/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TaskSpec:
    name: str
    harness: Literal["lm-eval", "lmms-eval"]
    num_fewshot: int
    metrics: tuple[str, ...]


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("piqa", "lm-eval", 0, ("acc", "acc_norm")),
        TaskSpec("arc_easy", "lm-eval", 0, ("acc", "acc_norm")),
        TaskSpec("arc_challenge", "lm-eval", 0, ("acc", "acc_norm")),
        TaskSpec("hellaswag", "lm-eval", 0, ("acc", "acc_norm")),
        TaskSpec("winogrande", "lm-eval", 0, ("acc",)),
        TaskSpec("mmlu", "lm-eval", 5, ("acc",)),
        TaskSpec("ai2d", "lmms-eval", 0, ("exact_match",)),
        TaskSpec("chartqa", "lmms-eval", 0, ("relaxed_overall",)),
        TaskSpec("docvqa_val", "lmms-eval", 0, ("anls",)),
        TaskSpec("mme", "lmms-eval", 0, ("mme_cognition_score", "mme_percetion_score")),
        TaskSpec("mmbench_en_dev", "lmms-eval", 0, ("gpt_eval_score",)),
    )
}
