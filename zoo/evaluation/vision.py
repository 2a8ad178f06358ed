"""LLaVA-Next's multimodal tasks through lmms-eval (the optional ``vision`` extra).

The study evaluated AI2D, ChartQA, DocVQA, MME and MMBench with lmms-eval; zoo calls its
``simple_evaluate`` on the checkpoint folder with the ``llava_hf`` model and reports the same
eval.json shape (``task/metric`` -> value) as the text tasks. What lmms-eval 0.7.3 needs, found by
running it (tests/test_vision.py): ``device_map`` given explicitly (its default, ``""``, is refused
by transformers 5), the simple (non-chat) model, which places the image token itself instead of
relying on a chat template that may not handle images, a Hub token even for public data (its tasks
load with ``token=True``), and a working folder of its own (MMBench writes ``submissions/`` into the
current directory). Tasks scored by an LLM judge need ``OPENAI_API_KEY``; without one zoo refuses
rather than publish a score lmms-eval made without its judge.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import MissingVisionExtra, UsageError
from zoo.tasks import TASKS


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def check(tasks: list[str]) -> None:
    """What a vision evaluation needs from the environment, before any model is loaded."""
    judged = [t for t in tasks if TASKS[t].judge]
    if judged and not os.environ.get("OPENAI_API_KEY"):
        raise UsageError(
            f"{', '.join(judged)} is scored by lmms-eval's GPT judge, and OPENAI_API_KEY is not set; "
            "fix: set OPENAI_API_KEY (and OPENAI_API_URL for another endpoint), or drop the task from eval.tasks"
        )
    from huggingface_hub import get_token

    if not get_token():
        raise UsageError(
            "lmms-eval loads its task datasets with a Hub token, even public ones, and none is set; "
            "fix: set HF_TOKEN (a read token) or run `hf auth login`"
        )


def evaluate(model_dir: Path, tasks: list[str], limit: int | None, batch_size: int, device: str) -> dict[str, Any]:
    try:
        from lmms_eval.evaluator import simple_evaluate
    except ImportError as e:
        raise MissingVisionExtra(
            f"tasks {', '.join(tasks)} need lmms-eval, which is not installed ({e.name}); fix: pip install 'zoo[vision]'"
        ) from e
    check(tasks)
    with tempfile.TemporaryDirectory(prefix="zoo-lmms-") as scratch, _inside(Path(scratch)):
        res = simple_evaluate(
            model="llava_hf",
            model_args=f"pretrained={model_dir.absolute()},device_map={device}",
            tasks=tasks,
            batch_size=batch_size,
            limit=limit,
            device=device,
            force_simple=True,
        )
    metrics: dict[str, float] = {}
    for task in tasks:
        spec = TASKS[task]
        row = res["results"].get(task, {})
        for m in spec.metrics:
            value = row.get(f"{m},{spec.filter}", row.get(m))
            if isinstance(value, (int, float)):
                metrics[f"{task}/{m}"] = float(value)
    return {"metrics": metrics, "tasks": {t: {"num_fewshot": 0, "limit": limit} for t in tasks}}
