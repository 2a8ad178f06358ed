"""What every stage record shares: one JSON file per stage, written and read only through its class.

A record is a frozen pydantic model with ``schema_version``: a newer zoo refuses, with a fix, a record it
cannot read instead of guessing, and a record missing a field or carrying an unknown one is unreadable in
the same way (the fix is to redo that stage). ``FileEntry`` and the hash cache are here because the
build's and the pull's file lists are checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from zoo.errors import NotReadyError
from zoo.workdir import DEFAULT as DEFAULT_WORKDIR
from zoo.workdir import Layout, read_json, sha256_file, write_json

SCHEMA_VERSION = 1
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


def stat_key(p: Path) -> list[int]:
    """What says a file is unchanged since it was hashed: size, mtime and inode."""
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
    cache = {f.path: [f.sha256, *stat_key(layout.model / f.path)] for f in files}
    packed_cache = {f.path: [f.sha256, *stat_key(layout.packed / f.path)] for f in packed}
    write_json(layout.verified, {"files": cache, "packed": packed_cache})
