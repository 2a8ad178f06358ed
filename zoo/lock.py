"""Exclusive locks on files: one writer per recipe (``stage_lock``), per pull folder and per state file.

``exclusive`` is the one implementation: an ``fcntl.flock`` on a lock file opened without following a
link, so the kernel drops it the moment its holder dies; the file also holds the holder's pid (and
whatever else the caller says: host, stage, start time) for the message a second process prints. The
holder removes the file while still holding it, and whoever locks checks that the path still names the
file it locked, so removal never lets two holders in. ``zoo pull``'s folder lock and the rollback record's
lock (``zoo.publish.target``, ``zoo.publish.fresh``) use it as it is.

``stage_lock`` is a recipe's: ``.zoo.lock`` in ``<workdir>/<name>/``, held by the running stage. A clean
exit removes the file (and the recipe folder, when the stage created it and left it empty); a file left
by a dead process is taken over with a warning. A process holds a recipe's lock once, whatever the
number of stages it runs (``zoo release`` runs them all), so stages nest freely.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from zoo.errors import BusyError, UsageError, ZooError
from zoo.workdir import Layout, disk_full, is_disk_full, refuse_link

log = logging.getLogger(__name__)
_held: dict[str, int] = {}  # lock paths this process holds


Holder = dict[str, object]


class NotAFile(OSError):
    """Something other than a regular file stands where the lock file goes (a FIFO, a device)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _holder(fd: int) -> Holder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def _open(path: Path, mode: int, parent_nofollow: bool) -> int:
    """The lock file, created if missing, never through a link (``O_NOFOLLOW``: a link in its place would
    have its target overwritten with the holder's JSON). ``parent_nofollow``: its folder must not be a
    link either. A link is ``ELOOP``; anything but a regular file there is ``NotAFile``; both untouched."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    if parent_nofollow:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fd = os.open(path.name, flags, mode, dir_fd=folder)
        finally:
            os.close(folder)
    else:
        fd = os.open(path, flags, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotAFile(errno.EINVAL, "not a regular file", str(path))
    return fd


def _acquire(path: Path, busy: Callable[[Holder], ZooError] | None, poll_s: float, mode: int, parent_nofollow: bool) -> int:
    """An fd of ``path`` that this process holds the flock of, and that the path still names. Held by
    another: ``busy(holder)`` is raised; without ``busy``, wait (polling every ``poll_s`` seconds, or in
    the kernel when ``poll_s`` is 0)."""
    while True:
        fd = _open(path, mode, parent_nofollow)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy is not None or poll_s else 0))
        except BlockingIOError:
            info = _holder(fd)
            os.close(fd)
            if busy is not None:
                raise busy(info) from None
            time.sleep(poll_s)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we locked: lock the new file


@contextlib.contextmanager
def exclusive(
    path: Path,
    holder: Holder,
    busy: Callable[[Holder], ZooError] | None = None,
    poll_s: float = 0.0,
    mode: int = 0o644,
    parent_nofollow: bool = False,
) -> Iterator[Holder]:
    """Hold the flock of ``path`` (created if missing; its folder must exist), with ``holder`` written in it;
    yields what a previous holder, now gone, left there (``{}`` when nothing). Another live holder: raise
    ``busy(its holder)``, or wait when ``busy`` is None. On leaving, the file is removed while still locked.
    OSErrors (a link: ``ELOOP``; ``NotAFile``) are the caller's to word."""
    fd = _acquire(path, busy, poll_s, mode, parent_nofollow)
    try:
        try:
            previous = _holder(fd)  # we hold the flock, so whoever wrote this is gone
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), **holder}).encode(), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        try:
            yield previous
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still locked: the next holder re-checks the path
    finally:
        os.close(fd)  # closing drops the flock


@contextlib.contextmanager
def stage_lock(layout: Layout, stage: str, wait: bool = False, poll_s: float = 1.0) -> Iterator[None]:
    """Hold ``layout``'s lock for ``stage``; a second holder fails with ``BusyError`` (or waits)."""
    key = str(layout.lock.absolute())
    if key in _held:
        yield
        return
    # every folder the lock's mkdir makes (a --workdir of missing parents: /tmp/x/a/b), outermost first
    created = [d for d in (*reversed(layout.folder.absolute().parents), layout.folder.absolute()) if not d.exists()]
    try:
        with contextlib.ExitStack() as held:
            try:
                layout.folder.mkdir(parents=True, exist_ok=True)
                info: Holder = {"host": socket.gethostname(), "stage": stage, "since": now()}
                previous = held.enter_context(exclusive(layout.lock, info, None if wait else _busy(layout), poll_s))
            except OSError as e:
                raise _unusable(layout, e) from None
            if previous.get("pid"):
                log.warning(
                    "%s: taking over a stale lock left by pid %s on %s (%s)",
                    layout.name, previous.get("pid"), previous.get("host"), previous.get("stage"),
                )  # fmt: skip
            _held[key] = 0
            try:
                yield
            except Exception as e:  # any stage: a full disk is one line (exit 11), not a writer's traceback
                if not isinstance(e, ZooError) and is_disk_full(e):
                    raise disk_full(layout.folder, f"{layout.name}'s {stage} results") from None
                raise
            finally:
                del _held[key]
    finally:
        for d in reversed(created):  # only when empty: a failed first stage leaves nothing behind
            with contextlib.suppress(OSError):
                d.rmdir()


def _busy(layout: Layout) -> Callable[[Holder], ZooError]:
    def error(info: Holder) -> ZooError:
        who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}, {info.get('stage', '?')}"
        return BusyError(
            f"{layout.name} is locked by another zoo process ({who} since {info.get('since', '?')}); "
            "fix: wait for it to finish, or re-run with --wait"
        )

    return error


def _unusable(layout: Layout, e: OSError) -> ZooError:
    """The one-line error for a recipe folder zoo cannot lock in: a link or other file at the lock, full disk,
    a file in the folder's place, read-only."""
    if e.errno == errno.ELOOP or layout.lock.is_symlink():
        refuse_link(layout.lock)
    if isinstance(e, NotAFile):
        return UsageError(
            f"{layout.lock} is not a regular file (zoo keeps its lock there); fix: remove it (rm {layout.lock}) and run again"
        )
    if is_disk_full(e):
        return disk_full(layout.workdir, f"{layout.name}'s lock file")
    return UsageError(
        f"cannot use {layout.folder} for {layout.name} ({e.strerror or type(e).__name__}: {e.filename or layout.lock}); "
        "fix: make it a writable folder, or pass --workdir with another one"
    )
