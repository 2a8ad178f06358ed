"""Evaluation tasks by name, in the one table that recipes, the harnesses and cards read.

Each task says which harness runs it and how the study reports it (n-shot, metrics), where its data
is on the Hub exactly as the harness itself reads it (lm-eval 0.4's ``dataset_path`` / ``dataset_name``
and split, so a card's model-index names the data that was really measured), the lm-eval task file
zoo's offline copies ``include:``, and the columns an offline ``<task>.jsonl`` must have.

Adding a task: one ``TaskSpec`` line below; for offline runs add its data to ``evaluation/data/``.
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
    hub_id: str | None = None  # the dataset the harness loads
    config: str | None = None
    split: str = "test"  # the split the harness scores
    task_file: str | None = None  # under lm_eval/tasks/ (MMLU: one file per subject)
    columns: tuple[str, ...] = ()  # what an offline <task>.jsonl row must hold
    card_type: str = "multiple-choice"  # model-index task type
    filter: str = "none"  # the harness's filter the metrics are reported under (``<metric>,<filter>``)
    judge: bool = False  # scored by an LLM judge (lmms-eval's OpenAI client): needs OPENAI_API_KEY

    @property
    def task_dir(self) -> str | None:
        """The lm-eval task folder holding this task's YAMLs, so a TaskManager indexes it alone."""
        if self.harness != "lm-eval":
            return None
        return self.task_file.rsplit("/", 1)[0] if self.task_file else f"{self.name}/default"


_ARC = ("question", "choices", "answerKey")
TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("piqa", "lm-eval", 0, ("acc", "acc_norm"), "baber/piqa", None, "validation", "piqa/piqa.yaml",
                 ("goal", "sol1", "sol2", "label")),
        TaskSpec("arc_easy", "lm-eval", 0, ("acc", "acc_norm"), "allenai/ai2_arc", "ARC-Easy", "test", "arc/arc_easy.yaml", _ARC),
        TaskSpec("arc_challenge", "lm-eval", 0, ("acc", "acc_norm"), "allenai/ai2_arc", "ARC-Challenge", "test",
                 "arc/arc_challenge.yaml", _ARC),
        TaskSpec("hellaswag", "lm-eval", 0, ("acc", "acc_norm"), "Rowan/hellaswag", None, "validation",
                 "hellaswag/hellaswag.yaml", ("activity_label", "ctx_a", "ctx_b", "endings", "label")),
        TaskSpec("winogrande", "lm-eval", 0, ("acc",), "allenai/winogrande", "winogrande_xl", "validation",
                 "winogrande/default.yaml", ("sentence", "option1", "option2", "answer")),
        TaskSpec("mmlu", "lm-eval", 5, ("acc",), "cais/mmlu", "all", "test", None, ("question", "choices", "answer")),
        # lmms-eval 0.7.3 reads its task data from lmms-lab-encoder/* (earlier releases: lmms-lab/*)
        TaskSpec("ai2d", "lmms-eval", 0, ("exact_match",), "lmms-lab-encoder/ai2d", None, "test",
                 columns=("question", "options", "answer", "image"), filter="flexible-extract"),
        TaskSpec("chartqa", "lmms-eval", 0, ("relaxed_overall",), "lmms-lab-encoder/ChartQA", None, "test",
                 columns=("type", "question", "answer", "image")),
        TaskSpec("docvqa_val", "lmms-eval", 0, ("anls",), "lmms-lab-encoder/DocVQA", "DocVQA", "validation",
                 columns=("question", "answers", "image")),
        TaskSpec("mme", "lmms-eval", 0, ("mme_cognition_score", "mme_perception_score"), "lmms-lab-encoder/MME", None, "test",
                 columns=("question_id", "question", "answer", "category", "image")),
        TaskSpec("mmbench_en_dev", "lmms-eval", 0, ("gpt_eval_score",), "lmms-lab-encoder/MMBench", "en", "dev",
                 judge=True),
    )
}  # fmt: skip
