"""The export stage: one built recipe into one format, proven exact, or refused with one line.

It reads the build only after ``BuildRecord.checked`` (a changed checkpoint stops here), writes into a
staging folder beside the target, proves the written files with the format's own reader and only then
swaps the folder in with its ``export.json``: a refusal, a failed proof, a full disk or Ctrl-C leaves the
previous export (or nothing) in place.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from zoo import __version__
from zoo.errors import MissingExtraError, UsageError, VerifyError
from zoo.export import FORMATS
from zoo.recipe import Recipe
from zoo.records import ExportRecord, FileEntry
from zoo.workdir import Layout, disk_full, is_disk_full, sha256_file, staging

log = logging.getLogger(__name__)
DOCS = "docs/serving.md#exports"


@dataclass(frozen=True)
class ExportResult:
    name: str
    status: str  # exported | skipped
    folder: Path
    record: ExportRecord


def refused(recipe: Recipe, fmt: str, why: str) -> UsageError:
    return UsageError(
        f"{recipe.name} has no exact {fmt} export: {why}; fix: publish or serve the build itself (zoo push, vLLM, "
        f"transformers): zoo writes no re-quantized file under a study cell's name ({DOCS})"
    )


def _needs(fmt: str) -> None:
    spec = FORMATS[fmt]
    for package in spec.needs:
        try:
            importlib.import_module(package)
        except ImportError:
            raise MissingExtraError(
                f"zoo export --to {fmt} needs the {spec.extra} extra ({package} is not installed); "
                f"fix: pip install 'zoo[{spec.extra}]'"
            ) from None


def _target(layout: Layout, fmt: str, out: Path | None) -> Path:
    if out is None:
        return layout.export(fmt)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / ExportRecord.FILE).is_file())):
        raise UsageError(f"--out {out} holds other files; fix: pass a new or empty folder (or a previous export's)")
    return out


def export(
    recipe: Recipe, workdir: Path, fmt: str, out: Path | None = None, force: bool = False, wait: bool = False
) -> ExportResult:
    """Write ``recipe``'s build as ``fmt`` under ``<workdir>/<name>/export/<fmt>/`` (or ``out``), exactly."""
    from zoo.lock import stage_lock
    from zoo.records import BuildRecord, check_recipe

    if fmt not in FORMATS:
        raise UsageError(f"--to {fmt!r} is not an export format; fix: one of {', '.join(FORMATS)}")
    why = _static(recipe, fmt)
    if why:
        raise refused(recipe, fmt, why)
    _needs(fmt)
    layout = Layout(workdir, recipe.name)
    with stage_lock(layout, "export", wait):
        build = BuildRecord.checked(layout)
        check_recipe(recipe, build, layout.folder)
        target = _target(layout, fmt, out)
        build_sha = sha256_file(layout.build_json)
        done = None if force else ExportRecord.in_folder(target)
        if done and done.build_sha256 == build_sha and done.format == fmt:
            log.info("%s: already exported to %s (%s); --force writes it again", recipe.name, fmt, target)
            return ExportResult(recipe.name, "skipped", target, done)
        record = _write(recipe, layout, fmt, target, build_sha, build.files)
        return ExportResult(recipe.name, "exported", target, record)


def _static(recipe: Recipe, fmt: str) -> str | None:
    from zoo.export.source import refusal

    return refusal(recipe, fmt)


def _write(recipe: Recipe, layout: Layout, fmt: str, target: Path, build_sha: str, files: tuple[FileEntry, ...]) -> ExportRecord:
    from zoo.export import source
    from zoo.machine import package_versions
    from zoo.records import file_entries

    module = importlib.import_module(FORMATS[fmt].module)
    try:
        src = source.read(layout.model)
        plan = module.plan(src)
    except ValueError as e:
        raise refused(recipe, fmt, str(e)) from None
    try:
        with staging(target) as tmp:
            try:
                types, exactness = module.export(src, plan, tmp, recipe.name)
            except ValueError as e:  # the written file does not read back as the build: a zoo bug, nothing kept
                raise VerifyError(
                    f"{recipe.name}: the {fmt} file zoo wrote failed its exactness check ({e}); nothing was kept; "
                    "fix: report it as a zoo bug"
                ) from None
            record = ExportRecord(
                name=recipe.name, format=fmt, zoo_version=__version__,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), build_sha256=build_sha,
                source_files=files, types=types, exactness=exactness, files=file_entries(tmp),
                versions=package_versions(("gguf", "mlx", "compressed-tensors", "safetensors")),
            )  # fmt: skip
            record.write_into(tmp)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(target.parent, f"the {fmt} export") from e
        raise
    log.info("%s: exported to %s in %s, every tensor proven equal (%s)", recipe.name, fmt, target, exactness["reader"])
    return record
