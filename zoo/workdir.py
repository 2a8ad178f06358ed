"""The work directory: one folder per recipe holding each stage's output and its JSON record.

``<workdir>/<name>/model/`` and ``build.json`` come from ``zoo build``; later stages add theirs beside
them. Every write here is atomic (temporary name, then rename), so a crash never leaves a file or a
folder that looks finished, and a stage can trust what it finds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT = Path("work")


def workdir(explicit: Path | None = None) -> Path:
    """``--workdir``, else ``$ZOO_WORKDIR``, else ``./work``."""
    return Path(explicit or os.environ.get("ZOO_WORKDIR") or DEFAULT)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
    os.replace(tmp, path)


@contextlib.contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``final``; renamed onto it only when the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_manifest(folder: Path) -> list[dict[str, Any]]:
    """Size and sha256 of every file under ``folder``, sorted by relative path."""
    return [
        {"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def clear_partials(parent: Path) -> None:
    """Remove leftovers of interrupted stages (``.*.partial-*`` folders)."""
    for p in parent.glob(".*.partial-*"):
        shutil.rmtree(p, ignore_errors=True)
