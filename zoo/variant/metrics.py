"""The ``Metric`` table: what an eval.json key means, in one place.

A key is ``group/name``: ``ppl/<dataset>`` a perplexity (lower is better), ``zero_shot_avg/acc`` the
mean of the zero-shot tasks' accuracies, ``<task>/<metric>`` one lm-eval or lmms-eval task's score
(higher is better). ``GROUPS`` holds what a group decides; a group not listed is a task. Code that
builds a key calls ``perplexity_key``; code that reads one calls ``metric(key)``: nobody tests a
``"ppl/"`` prefix or splits on the slash by hand.

Adding a kind of metric: one ``Group`` line below (and, if the harness writes it, its key built
through a function here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher"]
KEY = re.compile(r"[^/]+/.+", re.DOTALL)  # group/name: ppl/wikitext2, arc_easy/acc_norm, mme/perception
PERPLEXITY = "ppl"
ZERO_SHOT_AVG = "zero_shot_avg/acc"


@dataclass(frozen=True)
class Group:
    """What every metric of one group shares."""

    direction: Direction
    aggregation: str  # how the number is made from what was measured (said in docs and the site)
    label: str  # ``{name}``: the metric's name; ``{title}``: its dataset's title


GROUPS: dict[str, Group] = {
    PERPLEXITY: Group("lower", "exp of the mean token negative log-likelihood over the text's windows", "{title} perplexity"),
    "zero_shot_avg": Group("higher", "mean of the zero-shot tasks' accuracies", "zero-shot average ({name})"),
}
TASK = Group("higher", "mean over the task's items, as its harness scores it", "{group} ({name})")


@dataclass(frozen=True)
class Metric:
    """One eval.json key, with what its group says about it."""

    key: str
    group: str
    name: str
    label: str
    direction: Direction
    aggregation: str

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower"

    @property
    def is_perplexity(self) -> bool:
        return self.group == PERPLEXITY

    def recovery(self, value: float | None, base: float | None) -> float | None:
        """This model's share of the 16-bit base's quality, in %: base / value for a lower-is-better metric,
        value / base otherwise. None when either is missing or the ratio does not exist (a base of 0; a
        perplexity of 0 reads 0%, as ``zoo eval`` has always written it)."""
        if value is None or base is None:
            return None
        if self.lower_is_better:
            return 100.0 * base / value if value else 0.0
        return 100.0 * value / base if base else None


def valid_key(key: str) -> bool:
    """Whether ``key`` is ``group/name`` (eval.json refuses any other key)."""
    return KEY.fullmatch(key) is not None


def metric(key: str) -> Metric:
    """The table's entry for ``key``; ``ValueError`` for a key that is not ``group/name``."""
    if not valid_key(key):
        raise ValueError(f"metric key {key!r} is not group/name")
    group, name = key.split("/", 1)
    spec = GROUPS.get(group, TASK)
    label = spec.label.format(group=group, name=name, title=dataset_title(name) if group == PERPLEXITY else name)
    return Metric(key, group, name, label, spec.direction, spec.aggregation)


def perplexity_key(dataset: str) -> str:
    """The key of a perplexity measured on ``dataset`` (a name in ``zoo.data.DATASETS``)."""
    return f"{PERPLEXITY}/{dataset}"


def dataset_title(name: str) -> str:
    """How every renderer names a dataset: the dataset table's title, or the name itself for anything else."""
    from zoo.data import DATASETS

    spec = DATASETS.get(name)
    return spec.title if spec else name


def recovery(metrics: dict[str, float | None], base: dict[str, float | None]) -> dict[str, float]:
    """Every key's recovery that exists (what ``zoo eval`` writes into eval.json's ``recovery``)."""
    out = {}
    for k, v in metrics.items():
        r = metric(k).recovery(v, base.get(k))
        if r is not None:
            out[k] = r
    return out
