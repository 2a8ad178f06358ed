"""LLaVA-Next's multimodal tasks through lmms-eval (the optional ``vision`` extra).

The study evaluated AI2D, ChartQA, DocVQA, MME and MMBench with lmms-eval; zoo calls its
``simple_evaluate`` on the built checkpoint folder with the ``llava_hf`` model and reports the same
eval.json shape (``task/metric`` -> value) as the text tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import MissingVisionExtra
from zoo.tasks import TASKS


def evaluate(model_dir: Path, tasks: list[str], limit: int | None, batch_size: int, device: str) -> dict[str, Any]:
    try:
        from lmms_eval.evaluator import simple_evaluate
    except ImportError as e:
        raise MissingVisionExtra(
            f"tasks {', '.join(tasks)} need lmms-eval, which is not installed; fix: pip install 'zoo[vision]'"
        ) from e
    res = simple_evaluate(
        model="llava_hf", model_args=f"pretrained={model_dir}", tasks=tasks, batch_size=batch_size, limit=limit, device=device
    )
    metrics: dict[str, float] = {}
    for task in tasks:
        row = res["results"].get(task, {})
        for m in TASKS[task].metrics:
            value = row.get(f"{m},none", row.get(m))
            if isinstance(value, (int, float)):
                metrics[f"{task}/{m}"] = float(value)
    return {"metrics": metrics, "tasks": {t: {"num_fewshot": 0} for t in tasks}}
