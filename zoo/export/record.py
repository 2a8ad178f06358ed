"""``export.json``: what one export wrote, from which build, and the proof that it holds the build's weights.

It sits inside the export folder it describes (``<workdir>/<name>/export/<format>/export.json``) so that the
folder and its record are swapped in together; a release that carries the export publishes both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from zoo.records import FileEntry, Record
from zoo.workdir import Layout

FILE = "export.json"


def folder(layout: Layout, fmt: str) -> Path:
    """Where ``zoo export --to fmt`` writes by default (``Layout.export(fmt)`` once workdir.py has it)."""
    return layout.folder / "export" / fmt


class ExportRecord(Record):
    STAGE: ClassVar[str] = "export"
    DONE: ClassVar[str] = "exported"

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
        raise NotImplementedError("use ExportRecord.read_from(folder(layout, fmt) / FILE)")
