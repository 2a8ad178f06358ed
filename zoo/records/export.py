"""``export.json``: what one ``zoo export`` wrote, from which build, and the proof that it holds the build's weights.

It sits inside the export folder it describes (``Layout.export(fmt)/export.json``), so that the folder and
its record are swapped in together; a release that carries the export publishes both (``zoo push``), and
the card names the export's block types from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from zoo.records.base import FileEntry, Record
from zoo.workdir import Layout, sha256_file


class ExportRecord(Record):
    STAGE: ClassVar[str] = "export"
    DONE: ClassVar[str] = "exported"
    FILE: ClassVar[str] = "export.json"  # inside the folder it describes

    name: str
    format: str  # gguf, mlx
    zoo_version: str
    created: str
    build_sha256: str  # build.json's sha256: the build this export is of
    source_files: tuple[FileEntry, ...]  # the build's checkpoint files, as build.json lists them
    types: dict[str, str]  # per exported quantized tensor: its type in the format (Q5_0, affine 4-bit g128, ...)
    exactness: dict[str, Any]  # reader, tensors checked, equal (always true in a written record)
    files: tuple[FileEntry, ...]  # what the export folder holds besides this record
    versions: dict[str, str | None]

    @classmethod
    def path(cls, layout: Layout) -> Path:  # pragma: no cover - an export's path also needs its format
        raise NotImplementedError("use ExportRecord.of(layout, fmt) or ExportRecord.in_folder(folder)")

    @classmethod
    def in_folder(cls, folder: Path) -> ExportRecord | None:
        """The record of the export in ``folder`` (the workdir's or ``--out``); None when missing or unreadable."""
        return cls.read_from(folder / cls.FILE)

    @classmethod
    def of(cls, layout: Layout, fmt: str) -> ExportRecord | None:
        """The workdir's ``fmt`` export's record; None when missing, unreadable or of another format."""
        record = cls.in_folder(layout.export(fmt))
        return record if record is not None and record.format == fmt else None

    def write_into(self, folder: Path) -> None:
        """Into the staging folder that becomes the export's folder when whole."""
        self.write_to(folder / self.FILE)

    def is_of(self, layout: Layout) -> bool:
        """Whether this export was made from the build.json beside it now (a rebuild makes it stale)."""
        try:
            return self.build_sha256 == sha256_file(layout.build_json)
        except OSError:
            return False
