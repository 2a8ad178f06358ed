"""Which exports a release carries: each ``export/<fmt>/`` of the build beside it, as ``<fmt>/`` in the same repo.

An export is published only while its ``export.json`` names the build.json on disk now: its exactness was
proven against that build, so after a rebuild it is another model's file and stays behind, with one warning
naming the fix. Only the files the record lists go up (a stray file in the folder is never published as
the export), each checked against the record's size and sha256 first: a file changed since ``zoo export``
proved it is no longer proven, and the push stops. Push and the card both ask ``carried`` (the card to
name what the release holds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import VerifyError
from zoo.export import FORMATS
from zoo.records import ExportRecord
from zoo.workdir import Layout, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Carried:
    """One export a release holds: its record and repo path -> (local file, sha256)."""

    format: str
    record: ExportRecord
    files: dict[str, tuple[Path, str]]


def current(layout: Layout, warn: bool = False) -> list[ExportRecord]:
    """The workdir's export records of the build beside them now, in ``FORMATS`` order; with ``warn``, one
    warning line per export left out (of another build, or unreadable), naming the fix."""
    out = []
    for fmt in FORMATS:
        folder = layout.export(fmt)
        if not folder.exists():
            continue
        record = ExportRecord.of(layout, fmt)
        if record is not None and record.is_of(layout):
            out.append(record)
            continue
        if warn:
            why = "is of an earlier build" if record is not None else f"has no readable {ExportRecord.FILE}"
            name = layout.name
            log.warning("%s: its %s export in %s %s and is not published; fix: zoo export %s --to %s",
                        name, fmt, folder, why, name, fmt)  # fmt: skip
    return out


def carried(layout: Layout, warn: bool = True) -> list[Carried]:
    """The exports ``zoo push`` publishes, each file checked against its record (``VerifyError`` if changed)."""
    out = []
    for record in current(layout, warn):
        fmt, folder = record.format, layout.export(record.format)
        files: dict[str, tuple[Path, str]] = {}
        for f in record.files:
            p = folder / f.path
            ok = p.is_file() and not p.is_symlink() and p.stat().st_size == f.size and sha256_file(p) == f.sha256
            if not ok:
                raise VerifyError(
                    f"{layout.name}'s {fmt} export changed since zoo export proved it ({f.path} differs from "
                    f"{ExportRecord.FILE}); nothing was published; fix: zoo export {layout.name} --to {fmt} --force"
                )
            files[f"{fmt}/{f.path}"] = (p, f.sha256)
        meta = folder / ExportRecord.FILE
        files[f"{fmt}/{ExportRecord.FILE}"] = (meta, sha256_file(meta))
        out.append(Carried(fmt, record, files))
    return out
