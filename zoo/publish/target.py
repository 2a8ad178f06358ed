"""The folder ``zoo pull`` writes into: what in it zoo may replace or remove, and where it stages.

A pull records what it placed in ``<target>/.zoo/pull.json`` (repo, commit, and each file's size,
sha256 and mtime). Only files in that record, unchanged since (same size and mtime, no symlink), are
zoo's: a later pull of the same repo may replace or remove them. Anything else in the folder is
someone else's (a checkout, a ``.git``, a hand-edited config): the pull is refused unless ``--force``,
and even then only the files the new release lists are overwritten; nothing else is ever removed.
Downloads go to ``<target>/.zoo/staging`` first, so the release is verified before it is moved in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, VerifyError
from zoo.publish.manifest import Entry
from zoo.workdir import read_json, write_json

STATE = ".zoo"
RECORD = "pull.json"


@dataclass
class Target:
    root: Path
    repo_id: str
    ours: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> record entry, still as pulled
    foreign: list[str] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)  # folders this pull made, removed again if it keeps nothing

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def staging(self) -> Path:
        return self.state / "staging"


def inspect(root: Path, repo_id: str, force: bool) -> Target:
    """What ``root`` holds, refusing (before any download) a folder with files zoo did not pull."""
    t = Target(root, repo_id)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise UsageError(f"{root} is not a plain folder; fix: pass --local-dir with a new or earlier-pulled folder")
    if not root.exists():
        return t
    state = t.state
    _check_state(state)
    record = read_json(state / RECORD) or {}
    same_repo = record.get("repo_id") == repo_id and isinstance(record.get("files"), list)
    recorded = {f.get("path"): f for f in record.get("files", []) if isinstance(f, dict)} if same_repo else {}
    for top, dirs, files in os.walk(root):
        here = Path(top)
        if here == root:
            dirs[:] = [d for d in dirs if d != STATE]
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            p = here / name
            rel = p.relative_to(root).as_posix()
            f = recorded.get(rel)
            st = p.lstat()
            if f is not None and not p.is_symlink() and [st.st_size, st.st_mtime_ns] == [f.get("size"), f.get("mtime_ns")]:
                t.ours[rel] = f
            else:
                t.foreign.append(rel)
                if not force:
                    raise UsageError(
                        f"{root} holds files that are not from an earlier `zoo pull` of {repo_id} (e.g. {rel}); "
                        "nothing was written; fix: pull into a new folder with --local-dir, or pass --force to "
                        "overwrite only the files the release lists"
                    )
    return t


def _check_state(state: Path) -> None:
    """``.zoo`` holds only plain folders and files zoo made: a link anywhere in it (``staging`` pointing
    elsewhere, a planted ``staging/<commit>``) would make staging delete or write outside the target."""
    if not state.exists() and not state.is_symlink():
        return
    bad = state if state.is_symlink() or not state.is_dir() else None
    if bad is None and (state / RECORD).exists() and not (state / RECORD).is_file():
        bad = state / RECORD
    if bad is None:
        for top, dirs, files in os.walk(state):
            here = Path(top)
            for name in (*dirs, *files):
                p = here / name
                if p.is_symlink() or not (p.is_dir() or p.is_file()):
                    bad = p
                    break
            if bad is not None:
                break
    if bad is not None:
        raise UsageError(
            f"{bad} is not zoo's pull state (a link or not a plain file/folder); nothing was written; "
            "fix: pull into a new folder with --local-dir"
        )


def check_destinations(t: Target, entries: list[Entry], source: str) -> None:
    """Every listed file lands inside the target: no symlinked or non-folder parent, no folder in its place."""
    top = t.root.resolve() if t.root.exists() else t.root.absolute()
    for e in entries:
        dest = t.root / e.path
        for parent in [t.root / "/".join(e.path.split("/")[:i]) for i in range(1, e.path.count("/") + 1)]:
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                raise VerifyError(f"{source} lists {e.path!r}, but {parent} is not a folder inside {t.root}; nothing was written")
        if dest.is_symlink() or dest.is_dir():
            raise VerifyError(f"{source} lists {e.path!r}, but {dest} is a folder or a link; nothing was written")
        resolved = dest.resolve() if t.root.exists() else top / e.path
        if resolved != top and top not in resolved.parents:
            raise VerifyError(f"{source} lists {e.path!r}, which resolves outside {t.root}; nothing was written")


def open_staging(t: Target, commit: str) -> Path:
    """``.zoo/staging/<commit>``, creating what is missing; other commits' partial downloads are dropped."""
    for d in (t.root, t.state, t.staging):
        if not d.exists():
            d.mkdir(parents=False)
            t.created.append(d)
    for old in t.staging.iterdir():
        if old.name != commit:
            shutil.rmtree(old, ignore_errors=True)
    folder = t.staging / commit
    folder.mkdir(exist_ok=True)
    return folder


def discard(t: Target, keep_partial: bool) -> None:
    """After a failure: drop the staging folder (unless a re-run should resume it) and empty folders we made."""
    if not keep_partial:
        shutil.rmtree(t.staging, ignore_errors=True)
    for d in reversed(t.created):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty
    if not keep_partial:
        with contextlib.suppress(OSError):
            t.state.rmdir()


def move_in(t: Target, staged: Path, entries: list[Entry], fresh: set[str], record: dict[str, Any]) -> None:
    """Move the verified ``fresh`` files into place, drop zoo's files the release no longer lists, record."""
    for e in entries:
        if e.path in fresh:
            dest = t.root / e.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / e.path, dest)
    listed = {e.path for e in entries}
    for rel in sorted(set(t.ours) - listed):
        (t.root / rel).unlink(missing_ok=True)
        for parent in (t.root / rel).parents:
            if parent == t.root:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when empty
    files = []
    for e in entries:
        st = (t.root / e.path).stat()
        files.append({"path": e.path, "size": e.size, "sha256": e.sha256, "mtime_ns": st.st_mtime_ns})
    write_json(t.state / RECORD, {**record, "files": files})
    shutil.rmtree(t.staging, ignore_errors=True)
