"""``build.json``: what was built from which recipe and base, how, where, and every output file.

``BuildRecord.checked`` is the one door to a build: it proves the checkpoint on disk (and a native
method's packed one, ``packed_files``) still matches the record (sizes always, sha256 for files changed
since their last check), so no loader ever sees a truncated or altered checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator

from zoo.errors import NotReadyError
from zoo.records.base import FileEntry, Record, remember_verified, stat_key
from zoo.workdir import Layout, read_json, sha256_file


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
                if not bad and cache.get(f.path) != [f.sha256, *stat_key(p)]:
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
