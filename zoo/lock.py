"""One writer per recipe: a lock file in ``<workdir>/<name>/`` held by the running stage.

The lock is an ``fcntl.flock`` on ``.zoo.lock``, so the kernel drops it the moment its holder dies;
the file also holds the holder's pid, host, stage and start time, for the message a second process
prints. A clean exit removes the file (and the recipe folder, when the stage created it and left it
empty); a file left by a dead process is taken over with a warning. Whoever locks checks that the
path still names the file it locked, so removal never lets two holders in. A process holds a
recipe's lock once, whatever the number of stages it runs (``zoo release`` runs four), so stages
nest freely.
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
from collections.abc import Iterator
from datetime import datetime, timezone

from zoo.errors import BusyError, UsageError, ZooError
from zoo.workdir import Layout, disk_full, is_disk_full, refuse_link

log = logging.getLogger(__name__)
_held: dict[str, int] = {}  # lock path -> open fd, for this process


def _holder(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        data = json.loads(os.read(fd, 4096) or b"{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


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
        try:
            layout.folder.mkdir(parents=True, exist_ok=True)
            fd = _acquire(layout, wait, poll_s)
        except OSError as e:
            raise _unusable(layout, e) from None
        try:
            try:
                _take(layout, fd, stage)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(layout.lock)
                raise _unusable(layout, e) from None
            _held[key] = fd
            try:
                yield
            except Exception as e:  # any stage: a full disk is one line (exit 11), not a writer's traceback
                if not isinstance(e, ZooError) and is_disk_full(e):
                    raise disk_full(layout.folder, f"{layout.name}'s {stage} results") from None
                raise
            finally:
                del _held[key]
                os.unlink(layout.lock)  # while still locked: the next holder re-checks the path
        finally:
            os.close(fd)  # closing drops the flock
    finally:
        for d in reversed(created):  # only when empty: a failed first stage leaves nothing behind
            with contextlib.suppress(OSError):
                d.rmdir()


def _unusable(layout: Layout, e: OSError) -> ZooError:
    """The one-line error for a recipe folder zoo cannot lock in: full disk, a file in its place, read-only."""
    if is_disk_full(e):
        return disk_full(layout.workdir, f"{layout.name}'s lock file")
    return UsageError(
        f"cannot use {layout.folder} for {layout.name} ({e.strerror or type(e).__name__}: {e.filename or layout.lock}); "
        "fix: make it a writable folder, or pass --workdir with another one"
    )


def _take(layout: Layout, fd: int, stage: str) -> None:
    """Write who holds the lock now, warning when a dead holder's record is found."""
    previous = _holder(fd)
    if previous.get("pid"):  # we hold the flock, so whoever wrote this is gone
        log.warning(
            "%s: taking over a stale lock left by pid %s on %s (%s)",
            layout.name,
            previous.get("pid"),
            previous.get("host"),
            previous.get("stage"),
        )
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "stage": stage, "since": since}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)


def _open(layout: Layout) -> int:
    """The lock file, opened without following a link (``O_NOFOLLOW``): a link in its place would have
    its target truncated and overwritten with the holder's JSON. A link or anything but a regular file
    there is refused, untouched."""
    try:
        fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP or layout.lock.is_symlink():
            refuse_link(layout.lock)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(
            f"{layout.lock} is not a regular file (zoo keeps its lock there); fix: remove it (rm {layout.lock}) and run again"
        )
    return fd


def _acquire(layout: Layout, wait: bool, poll_s: float) -> int:
    """An fd of ``layout.lock`` that this process holds the flock of, and that the path still names."""
    while True:
        fd = _open(layout)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            os.close(fd)
            if not wait:
                who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}, {info.get('stage', '?')}"
                raise BusyError(
                    f"{layout.name} is locked by another zoo process ({who} since {info.get('since', '?')}); "
                    "fix: wait for it to finish, or re-run with --wait"
                ) from None
            time.sleep(poll_s)
            continue
        try:
            same = os.fstat(fd).st_ino == os.lstat(layout.lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we locked: lock the new file
