"""``bench.json``: the build in each serving runtime, against transformers, with speed and memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from zoo.records.base import Record
from zoo.workdir import Layout, sha256_file


class Speed(BaseModel):
    """One model in one runtime, measured by ``zoo bench`` (protocol: ``zoo.serving.hf``'s docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefill_tokens_per_s: float
    ttft_s: float
    decode_tokens_per_s_b1: float
    decode_tokens_per_s_batch: float
    batch: int
    new_tokens: int
    prompt_tokens: int
    peak_memory_bytes: int | None
    memory: str  # what the peak counts: the accelerator's tensors, or the host process's RSS


class RuntimeCheck(BaseModel):
    """Whether one runtime serves the build: ``serves`` (loads, generates, agrees with transformers within the
    tolerance), ``disagrees`` (loads, outside it), ``refused`` (its own reason) or ``failed`` (crashed, timed out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: str  # transformers, vllm
    version: str | None
    device: str  # cpu, cuda
    device_name: str
    dtype: str
    status: str
    reason: str | None = None  # one line, through zoo.untrusted.plain
    ppl_rel_diff: float | None = None  # |ppl(runtime) / ppl(transformers) - 1| on the same held-out tokens
    max_logprob_diff: float | None = None
    generated: str | None = None  # the greedy continuation of the first prompt, through plain
    speed: dict[str, Speed] = {}  # "variant" and "base" (its 16-bit base, same runtime and run)

    @property
    def serves(self) -> bool:
        return self.status == "serves"


class BenchRecord(Record):
    """``bench.json``: the build in each serving runtime found, against transformers, with speed and memory."""

    STAGE: ClassVar[str] = "bench"
    DONE: ClassVar[str] = "benchmarked"

    name: str
    created: str
    build_sha256: str  # the build.json measured: a rebuilt checkpoint makes this record stale
    settings_sha256: str
    settings: dict[str, Any]
    scheme: str
    tolerance: float  # relative perplexity difference allowed against transformers (zoo.serving.schemes)
    tolerance_why: str
    logprob_tokens: int
    runtimes: tuple[RuntimeCheck, ...]

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.bench_json

    @classmethod
    def current(cls, layout: Layout) -> BenchRecord | None:
        """bench.json when it measured the build beside it now; None when missing, unreadable or of an earlier build
        (cards then say the serving check has not run for this build)."""
        record = cls.read(layout)
        if record is None:
            return None
        try:
            same = record.build_sha256 == sha256_file(layout.build_json)
        except OSError:
            return None
        return record if same else None
