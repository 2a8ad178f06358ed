"""``eval.json``: the build's metrics and its base's, and the recovery gate's verdict.

``EvalRecord.checked`` refuses an eval of an earlier build (or whose published samples changed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from zoo.errors import NotReadyError
from zoo.records.base import Record
from zoo.records.baseline import Baseline
from zoo.variant.metrics import valid_key
from zoo.workdir import Layout, sha256_file


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_recovery: float | None
    passed: bool
    failed: tuple[str, ...]


class EvalRecord(Record):
    """``eval.json``: the build's metrics and its base's, measured the same way, and the gate's verdict."""

    STAGE: ClassVar[str] = "eval"
    DONE: ClassVar[str] = "evaluated"

    name: str
    created: str
    build_sha256: str  # sha256 of the build.json measured: a rebuilt checkpoint makes this record stale
    suite_sha256: str
    recipe_sha256: str | None
    suite: dict[str, Any]
    limit: int | None
    batch_size: int
    seed: int
    dtype: str
    device: str
    duration_s: float
    metrics: dict[str, float | None]
    details: dict[str, Any]
    baseline: Baseline
    recovery: dict[str, float]
    gate: Gate | None = None
    samples_sha256: str | None = None  # of eval-samples.jsonl.gz: lm-eval's per-item outputs, published beside it
    form: str | None = None  # the checkpoint measured: "packed" (packed/) or "model" (model/); None before #32: model/

    @model_validator(mode="after")
    def _metric_keys(self) -> EvalRecord:
        """Every metric is ``group/name`` (``ppl/wikitext2``, ``arc_easy/acc``): cards, tables and the Hub's
        results split on the slash, so a record with other keys is unreadable like any malformed one."""
        for where, keys in (("metrics", self.metrics), ("baseline", self.baseline.metrics), ("recovery", self.recovery)):
            bad = next((k for k in keys if not valid_key(k)), None)
            if bad is not None:
                raise ValueError(f"{where}: metric key {bad!r} is not group/name")
        return self

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.eval_json

    def measured(self, layout: Layout) -> bool:
        """Whether this record measured the build.json that sits beside it now."""
        try:
            return self.build_sha256 == sha256_file(layout.build_json)
        except OSError:
            return False

    @classmethod
    def checked(cls, layout: Layout) -> EvalRecord | None:
        """eval.json when it measured exactly the current build; None when there is none; an error when stale."""
        if not layout.eval_json.exists():
            return None
        record = cls.require(layout)
        if not record.measured(layout):
            raise NotReadyError(
                f"{layout.name}'s eval.json measured an earlier build, not the one in build.json; fix: zoo eval {layout.name}"
            )
        samples = layout.samples
        if record.samples_sha256 is not None and (not samples.is_file() or sha256_file(samples) != record.samples_sha256):
            raise NotReadyError(
                f"{layout.name}'s {samples.name} no longer matches eval.json; fix: zoo eval {layout.name} --force"
            )
        return record
