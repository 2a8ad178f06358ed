"""The 16-bit base's measurement: ``Measurement`` (one model, one suite), the cached ``BaselineRecord``
under ``_baselines/`` shared by a base's variants, and the ``Baseline`` copy an eval.json carries."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from zoo.records.base import Record


class Baseline(BaseModel):
    """The 16-bit base measured with the same suite (cached under ``_baselines/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: dict[str, Any] = {}
    metrics: dict[str, float | None]
    source: str | None = None  # where the numbers came from: "measured", or "hub:<store repo>"; None before zoo said


class Measurement(BaseModel):
    """One model measured with one suite: what ``zoo eval`` runs on the build and on its base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: dict[str, float | None]
    details: dict[str, Any]  # per perplexity text and per task: windows, tokens, samples, hashes
    dtype: str
    device: str
    duration_s: float


class BaselineRecord(Record, Measurement):
    """``_baselines/<base>/<suite hash>.json``: the 16-bit base's measurement, shared by its variants."""

    STAGE: ClassVar[str] = "eval"
    DONE: ClassVar[str] = "evaluated"

    base: dict[str, Any]  # the base's identity
    # "measured" where zoo measured it; "hub:<store repo>" when taken from the Hub store of baselines (kept in
    # the workdir's cache as it came, so a later eval still says where the numbers were measured)
    source: str | None = None
