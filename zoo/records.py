"""The stage records: ``build.json`` and ``eval.json`` as typed, versioned models.

Each record is written and read only through its class here, so a field has one name and one type
for every stage that reads it (eval, card, push, release, the tests). ``schema_version`` lets a
newer zoo refuse, with a fix, a record it cannot read instead of guessing; a record that is missing
a field or carries an unknown one is unreadable in the same way (the fix is to redo that stage).

``BuildRecord.checked`` is the one door to a build: it proves the checkpoint on disk (and a native
method's packed one, ``packed_files``) still matches the record (sizes always, sha256 for files changed
since their last check), so no loader ever sees a truncated or altered checkpoint. ``EvalRecord.checked``
refuses an eval of an earlier build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from zoo.errors import NotReadyError
from zoo.workdir import DEFAULT as DEFAULT_WORKDIR
from zoo.workdir import Layout, read_json, sha256_file, write_json

SCHEMA_VERSION = 1
METRIC_KEY = re.compile(r"[^/]+/.+", re.DOTALL)  # group/name: ppl/wikitext2, arc_easy/acc_norm, mme/perception
R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """A stage's JSON file; ``STAGE`` names the command that writes it (used in fixes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    STAGE: ClassVar[str]
    DONE: ClassVar[str]

    schema_version: int = SCHEMA_VERSION

    @classmethod
    def path(cls, layout: Layout) -> Path:
        raise NotImplementedError

    @classmethod
    def parse(cls: type[R], data: dict[str, Any]) -> R | None:
        """The record in ``data``; None when it is of another schema version or does not fit the model."""
        if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            return None
        try:
            return cls.model_validate(data)
        except ValidationError:
            return None

    @classmethod
    def read(cls: type[R], layout: Layout) -> R | None:
        """The record when present and readable; None otherwise (callers that may skip work use this)."""
        return cls.read_from(cls.path(layout))

    @classmethod
    def read_from(cls: type[R], path: Path) -> R | None:
        data = read_json(path)
        return None if data is None else cls.parse(data)

    @classmethod
    def require(cls: type[R], layout: Layout) -> R:
        """The record, or ``NotReadyError`` saying whether it is missing or unreadable, and the fix."""
        name, path = layout.name, cls.path(layout)
        data = read_json(path)
        if data is None and not path.exists():
            where = "" if layout.workdir == DEFAULT_WORKDIR else f" --workdir {layout.workdir}"  # the fix builds there
            raise NotReadyError(f"{name} is not {cls.DONE} in {layout.workdir}; fix: zoo {cls.STAGE} {name}{where}")
        record = None if data is None else cls.parse(data)
        if record is None:
            raise NotReadyError(
                f"{name}'s {path.name} in {layout.folder} is unreadable or of another zoo version; "
                f"fix: zoo {cls.STAGE} {name} --force"
            )
        return record

    def write(self, layout: Layout) -> None:
        """Atomically: a crash leaves the old record or the new one, never half of one."""
        self.write_to(self.path(layout))

    def write_to(self, path: Path) -> None:
        """Into a staging folder that becomes the stage's folder when whole (the card does this)."""
        write_json(path, self.model_dump(mode="json"))


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int
    sha256: str


class BuildRecord(Record):
    """``build.json``: what was built from which recipe and base, how, where, and every output file."""

    STAGE: ClassVar[str] = "build"
    DONE: ClassVar[str] = "built"

    name: str
    zoo_version: str
    created: str
    recipe_sha256: str
    recipe: dict[str, Any]
    base: dict[str, Any]  # the base's identity (repo and commit, or built-in / path and hash)
    base_gating: dict[str, Any] = {}  # the base card's extra_gated_* fields, mirrored by the release card
    method: dict[str, Any]  # name, format, and what the method reports about its run
    seed: int
    calibration: dict[str, Any] | None  # the calibration data's identity; None for data-free methods
    device: str
    host_memory_limit_bytes: int | None
    versions: dict[str, str | None]
    timings_s: dict[str, float]
    peak_host_rss_bytes: int
    gpu: dict[str, Any] | None
    total_bytes: int  # the checkpoint a release publishes: packed_files' sizes when publishes_packed, else files'
    files: tuple[FileEntry, ...]  # model/: the checkpoint (a native method's 16-bit "fake" one)
    packed_files: tuple[FileEntry, ...] = ()  # packed/: a native method's zoo-packed checkpoint (#32; absent before)

    @field_validator("base_gating")
    @classmethod
    def _gating_within_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        """The mirrored gating fields within the limits the build applies (a build.json of an older zoo, or one
        edited, could carry more; the card mirrors them into front matter): past them the record is unreadable."""
        from zoo.parse import check_gating

        check_gating(value)  # LimitError: a ValueError, so pydantic reports the record as invalid
        return value

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.build_json

    @property
    def model_bytes(self) -> int:
        """The size of model/ (for a native method, the 16-bit "fake" checkpoint)."""
        return sum(f.size for f in self.files)

    @property
    def packed_bytes(self) -> int | None:
        """The size of packed/; None for a build without one (other methods, or a build before #32)."""
        return sum(f.size for f in self.packed_files) if self.packed_files else None

    @property
    def publishes_packed(self) -> bool:
        """Whether a release of this build is its packed checkpoint: one was recorded, and the recipe's
        ``hub.weights`` is not ``fake``."""
        hub = self.recipe.get("hub")
        return bool(self.packed_files) and (hub.get("weights", "packed") if isinstance(hub, dict) else "packed") == "packed"

    def published(self, layout: Layout) -> tuple[Path, tuple[FileEntry, ...]]:
        """The folder whose recorded files a release publishes as its checkpoint, and those files."""
        return (layout.packed, self.packed_files) if self.publishes_packed else (layout.model, self.files)

    def _folders(self, layout: Layout) -> tuple[tuple[str, Path, tuple[FileEntry, ...]], ...]:
        return ("files", layout.model, self.files), ("packed", layout.packed, self.packed_files)

    @classmethod
    def checked(cls, layout: Layout, rehash: bool = False) -> BuildRecord:
        """The record, after proving the checkpoints on disk (model/, and packed/ when recorded) still match it.

        Sizes are always compared; sha256 too, except for files whose size, mtime and inode equal those
        of the last successful check (``rehash`` ignores that cache: push does, since it publishes)."""
        record = cls.require(layout)
        name = layout.name
        cached = {} if rehash else read_json(layout.verified) or {}
        fresh = False
        for key, root, entries in record._folders(layout):
            cache = cached.get(key, {}) if isinstance(cached, dict) else {}
            if not isinstance(cache, dict):  # a damaged hash cache only means re-hashing
                cache = {}
            for f in entries:
                p = root / f.path
                bad = not p.is_file() or p.stat().st_size != f.size
                if not bad and cache.get(f.path) != [f.sha256, *_stat_key(p)]:
                    bad, fresh = sha256_file(p) != f.sha256, True
                if bad:
                    where = f.path if key == "files" else f"{root.name}/{f.path}"
                    raise NotReadyError(f"{name}'s build no longer matches build.json ({where}); fix: zoo build {name} --force")
        if fresh or rehash:
            remember_verified(layout, record.files, record.packed_files)
        return record

    def intact(self, layout: Layout) -> bool:
        """Every listed file is there with its size (the cheap check a rerun makes before skipping)."""
        return all(
            (root / f.path).is_file() and (root / f.path).stat().st_size == f.size
            for _, root, entries in self._folders(layout)
            for f in entries
        )


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_recovery: float | None
    passed: bool
    failed: tuple[str, ...]


class Baseline(BaseModel):
    """The 16-bit base measured with the same suite (cached under ``_baselines/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: dict[str, Any] = {}
    metrics: dict[str, float | None]


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

    @model_validator(mode="after")
    def _metric_keys(self) -> EvalRecord:
        """Every metric is ``group/name`` (``ppl/wikitext2``, ``arc_easy/acc``): cards, tables and the Hub's
        results split on the slash, so a record with other keys is unreadable like any malformed one."""
        for where, keys in (("metrics", self.metrics), ("baseline", self.baseline.metrics), ("recovery", self.recovery)):
            bad = next((k for k in keys if not METRIC_KEY.fullmatch(k)), None)
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


class CardRecord(Record):
    """``card/card.json``: which build and eval a card shows (push refuses a card of other records)."""

    STAGE: ClassVar[str] = "card"
    DONE: ClassVar[str] = "carded"

    inputs_sha256: str  # everything the card read, siblings and templates included: equal means skip
    build_sha256: str
    eval_sha256: str | None
    plot: dict[str, Any] | None
    plot_series: list[Any]
    zoo_version: str

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.card_json


class PushRecord(Record):
    """``push.json``: the last release this workdir published, so cards link only to repos that exist."""

    STAGE: ClassVar[str] = "push"
    DONE: ClassVar[str] = "pushed"

    repo_id: str
    revision: str
    commit: str
    tag: str | None
    build_sha256: str
    endpoint: str
    pushed: str

    @field_validator("endpoint")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        """Stored, and read back from older records, without ``user:token@``: cards and the site link to it."""
        from zoo.untrusted import redact_url

        return redact_url(value)

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.push_json


def _stat_key(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def file_entries(folder: Path) -> tuple[FileEntry, ...]:
    """Size and sha256 of every file under ``folder``, sorted by relative path."""
    return tuple(
        FileEntry(path=p.relative_to(folder).as_posix(), size=p.stat().st_size, sha256=sha256_file(p))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    )


def remember_verified(layout: Layout, files: tuple[FileEntry, ...], packed: tuple[FileEntry, ...] = ()) -> None:
    """Record that ``files`` (of model/) and ``packed`` (of packed/) were hashed just now, so later checks only
    re-hash what changed on disk."""
    cache = {f.path: [f.sha256, *_stat_key(layout.model / f.path)] for f in files}
    packed_cache = {f.path: [f.sha256, *_stat_key(layout.packed / f.path)] for f in packed}
    write_json(layout.verified, {"files": cache, "packed": packed_cache})


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
