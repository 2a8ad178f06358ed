"""The folder ``zoo pull`` writes into: what in it zoo may replace or remove, and where it stages.

A pull records what it placed in ``<target>/.zoo/pull.json`` (repo, commit, and each file's size,
sha256 and mtime). Only files in that record, unchanged since (same size and mtime, no symlink), are
zoo's: a later pull of the same repo may replace or remove them. Anything else in the folder is
someone else's (a checkout, a ``.git``, a hand-edited config): the pull is refused unless ``--force``,
and even then only the files the new release lists are overwritten; nothing else is ever removed.
Downloads go to ``<target>/.zoo/staging`` first, so the release is verified before it is moved in.

One pull at a time per folder: ``hold`` takes an ``flock`` on ``<target>/.zoo/lock`` (``zoo.lock.exclusive``,
opened without following links) before the folder is even read, so a second pull into it is a ``BusyError`` (exit 12)
instead of two writers moving files under each other. A missing ``--local-dir`` is created with its
missing parents, as ``mkdir -p`` would; whatever a failed pull created is removed again.

``--unpack`` (a packed release, #32) decodes into ``.zoo/staging`` and, once verified, moves the 16-bit
checkpoint to ``<target>/unpacked``, recorded like the pulled files (so the next pull replaces it, or removes
it when not asked to unpack); ``--unpack-to DIR`` writes a new or empty folder outside the target instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import BusyError, UsageError, VerifyError, ZooError
from zoo.lock import NotAFile, exclusive, now
from zoo.publish.manifest import Entry
from zoo.workdir import disk_full, is_disk_full, read_json, sha256_file, write_json

STATE = ".zoo"
RECORD = "pull.json"
LOCK = "lock"
UNPACKED = "unpacked"  # where --unpack puts the 16-bit checkpoint inside the target


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


@contextlib.contextmanager
def hold(root: Path, repo_id: str, force: bool) -> Iterator[Target]:
    """``root`` created if missing, locked against a second pull, and inspected; on leaving, the lock
    is dropped and every folder this pull created that is still empty is removed again."""
    t = Target(root, repo_id)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise UsageError(f"{root} is not a plain folder; fix: pass --local-dir with a new or earlier-pulled folder")
    _check_state(t.state)
    try:
        for d in [*reversed(root.absolute().parents), root, t.state]:
            if not d.is_dir():  # mkdir -p; a link or file in the way fails as "not a folder"
                _mkdir(d, t)
        with _lock(t):
            inspect(t, force)
            yield t
    finally:
        for d in [t.state, *reversed(t.created)]:
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty


def _mkdir(d: Path, t: Target) -> None:
    try:
        d.mkdir()
    except FileExistsError:
        raise UsageError(f"{d} is not a folder; fix: pass --local-dir with a folder path") from None
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(d.parent, f"{t.repo_id}'s files", "--local-dir") from None
        raise UsageError(
            f"cannot create {d} ({e.strerror or type(e).__name__}); fix: pass --local-dir with a folder you can write"
        ) from None
    t.created.append(d)


@contextlib.contextmanager
def _lock(t: Target) -> Iterator[None]:
    """``.zoo/lock`` held (``zoo.lock.exclusive``; neither it nor ``.zoo`` may be a link); ``BusyError`` if
    another pull has it."""

    def busy(info: dict[str, object]) -> ZooError:
        return BusyError(
            f"{t.root} is being written by another `zoo pull` (pid {info.get('pid', '?')} since {info.get('since', '?')}); "
            "nothing was written; fix: wait for it to finish, then re-run (or pull into another folder with --local-dir)"
        )

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(t.state / LOCK, {"since": now()}, busy, parent_nofollow=True))
        except OSError as e:
            if not isinstance(e, NotAFile) and e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR):
                raise
            raise UsageError(
                f"{t.state / LOCK} is not zoo's pull state (a link or not a plain file/folder); nothing was written; "
                "fix: pull into a new folder with --local-dir"
            ) from None
        yield


def inspect(t: Target, force: bool) -> None:
    """What ``t.root`` holds, refusing (before any download) a folder with files zoo did not pull."""
    root, repo_id = t.root, t.repo_id
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
    if not t.staging.exists():
        t.staging.mkdir()
    for old in t.staging.iterdir():
        if old.name != commit:
            shutil.rmtree(old, ignore_errors=True)
    folder = t.staging / commit
    folder.mkdir(exist_ok=True)
    return folder


def discard(t: Target, keep_partial: bool) -> None:
    """After a failure: drop the staging folder unless a re-run should resume it (``hold`` then removes
    the folders this pull made, when empty)."""
    if not keep_partial:
        shutil.rmtree(t.staging, ignore_errors=True)


def unpack_destination(t: Target, unpack_to: Path | None) -> Path:
    """Where ``--unpack`` writes, refused (before any download) when it would touch what is not zoo's:
    ``<target>/unpacked`` may hold only an earlier pull's unpacked files; ``unpack_to`` must be a new or
    empty folder, in an existing folder, outside the target."""
    if unpack_to is None:
        d = t.root / UNPACKED
        foreign = d.is_symlink() or (d.exists() and not d.is_dir())
        for top, dirs, files in os.walk(d) if not foreign else ():
            for name in (*dirs, *files):
                p = Path(top) / name
                rel = p.relative_to(t.root).as_posix()
                foreign = foreign or p.is_symlink() or not (p.is_dir() or (p.is_file() and rel in t.ours))
        if foreign:
            raise UsageError(
                f"{d} holds files that are not from an earlier `zoo pull --unpack`; nothing was written; "
                "fix: move them away, or pass --unpack-to with a new folder"
            )
        return d
    d = unpack_to
    if d.is_symlink() or (d.exists() and (not d.is_dir() or any(d.iterdir()))):
        raise UsageError(f"{d} is not a new or empty folder; nothing was written; fix: name a new or empty --unpack-to folder")
    parent = d.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a folder; nothing was written; fix: create it, or name another --unpack-to folder")
    root, where = t.root.resolve(), parent.resolve() / d.name
    if where == root or root in where.parents:
        raise UsageError(
            f"{d} is inside the pull's folder {t.root}; nothing was written; fix: leave out --unpack-to (the 16-bit "
            f"checkpoint then goes to {t.root / UNPACKED}), or name a folder outside it"
        )
    return d


def move_in(
    t: Target, staged: Path, entries: list[Entry], fresh: set[str], record: dict[str, Any], unpacked: Path | None = None
) -> None:
    """Move the verified ``fresh`` files into place, drop zoo's files the release no longer lists, record.
    ``unpacked``: a verified 16-bit checkpoint (a folder in staging) that becomes ``<target>/unpacked``."""
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
    if unpacked is not None:
        dest = t.root / UNPACKED
        for top, dirs, _ in os.walk(dest, topdown=False):  # what is left: folders (unpack_destination checked)
            for d in dirs:
                os.rmdir(Path(top) / d)
        if dest.is_dir():
            os.rmdir(dest)
        os.replace(unpacked, dest)
        for p in sorted(dest.rglob("*")):
            if p.is_file():
                st = p.stat()
                rel = p.relative_to(t.root).as_posix()
                files.append({"path": rel, "size": st.st_size, "sha256": sha256_file(p), "mtime_ns": st.st_mtime_ns})
    write_json(t.state / RECORD, {**record, "files": files})
    shutil.rmtree(t.staging, ignore_errors=True)
