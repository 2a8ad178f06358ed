"""The work directory: one folder per recipe holding each stage's output and its JSON record.

``Layout`` is the one owner of every path under ``<workdir>/<name>/``: ``model/`` and ``build.json``
from ``zoo build``, ``eval.json``, ``card/``, and the lock. Every write here is atomic (temporary
name, then rename), so a crash never leaves a file or a folder that looks finished, and a stage can
trust what it finds once ``zoo.records.BuildRecord.checked`` has compared the checkpoint with its record.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from zoo.errors import DiskSpaceError, UsageError

DEFAULT = Path("work")


def workdir(explicit: Path | None = None) -> Path:
    """``--workdir``, else ``$ZOO_WORKDIR``, else ``./work``; refused early when it cannot hold builds."""
    path = Path(explicit or os.environ.get("ZOO_WORKDIR") or DEFAULT)
    if path.exists() and not path.is_dir():
        raise UsageError(f"workdir {path} is a file, not a folder; fix: pass --workdir with a folder (or remove the file)")
    probe = path if path.exists() else next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"workdir {path} is not writable; fix: pass --workdir with a folder you can write to")
    return path


def is_workdir(folder: Path) -> bool:
    """Whether ``folder`` is empty or already a zoo workdir (a recipe folder with a record, or zoo's own
    folders): one a stage may write into even when it is the current folder."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    ours = {"_baselines", "_rehearsal", "_site"}
    return not entries or any(e.name in ours or (e / "build.json").is_file() or (e / ".zoo.lock").exists() for e in entries)


def refuse_accidental(path: Path, given: str, remedy: str) -> None:
    """Stop (exit 2, nothing created) a workdir that is a checkout's root, or the current folder when that
    holds the user's own files (not an empty folder, not already a workdir): a stage would write its
    folders among them, usually from a typo or an unset variable. ``cd work && zoo card NAME --workdir .``
    stays fine. ``given`` says where the value came from (``--workdir .``, ``ZOO_WORKDIR='..' (from the
    environment)``)."""
    where = path.resolve()
    if where == Path.cwd().resolve() and not is_workdir(where):
        why = "is the current folder, which holds files of its own"
    else:
        marker = next((m for m in (".git", "pyproject.toml") if (where / m).exists()), None)
        if marker is None:
            return
        why = f"is a checkout's root (it holds {marker})"
    raise UsageError(f"{given} {why}: builds would land among its files; fix: {remedy}")


@dataclass(frozen=True)
class Layout:
    """Where each stage of recipe ``name`` keeps its output; no other module joins these paths."""

    workdir: Path
    name: str

    @property
    def folder(self) -> Path:
        return self.workdir / self.name

    @property
    def model(self) -> Path:
        return self.folder / "model"

    @property
    def packed(self) -> Path:
        """A native method's packed checkpoint (``docs/packed.md``), beside ``model``."""
        return self.folder / "packed"

    @property
    def build_json(self) -> Path:
        return self.folder / "build.json"

    @property
    def eval_json(self) -> Path:
        return self.folder / "eval.json"

    @property
    def card(self) -> Path:
        return self.folder / "card"

    @property
    def card_json(self) -> Path:
        return self.card / "card.json"

    @property
    def samples(self) -> Path:
        """lm-eval's per-item outputs of the variant's evaluation (gzip JSON lines)."""
        return self.folder / "eval-samples.jsonl.gz"

    @property
    def push_json(self) -> Path:
        return self.folder / "push.json"

    @property
    def bench_json(self) -> Path:
        """``zoo bench``'s record: which runtimes serve the build, how closely, how fast, in how much memory."""
        return self.folder / "bench.json"

    @property
    def signature(self) -> Path:
        """The last manifest ``zoo push --sign-key`` signed, and its signature (reused while unchanged)."""
        return self.folder / "signature"

    def export(self, fmt: str) -> Path:
        """``zoo export --to fmt``'s folder (the file and its ``export.json``); a release publishes it as ``fmt/``."""
        return self.folder / "export" / fmt

    @property
    def offload(self) -> Path:
        return self.folder / ".offload"

    @property
    def train(self) -> Path:
        return self.folder / "train"

    @property
    def verified(self) -> Path:
        """Stat cache of the last full hash check (size, mtime, inode per file)."""
        return self.folder / ".verified.json"

    @property
    def lock(self) -> Path:
        return self.folder / ".zoo.lock"

    @property
    def baselines(self) -> Path:
        return self.workdir / "_baselines"

    @property
    def rehearsal(self) -> Path:
        """``zoo rehearse``'s shrunk bases and stage outputs, apart from real builds."""
        return self.workdir / "_rehearsal"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


MAX_RECORD_BYTES = 256 << 20  # far above any record zoo writes (eval.json with every task's details: ~1 MB)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable, not an object, or past the size and
    nesting limits of ``zoo.parse`` (a record may have come with a pulled release: deep nesting would end
    in a RecursionError traceback, not in the stage's "unreadable, redo it" line)."""
    from zoo.parse import load_json

    try:
        data = load_json(path.read_bytes(), MAX_RECORD_BYTES)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def refuse_link(path: Path) -> None:
    """Stop (one line, exit 2) where a link stands in place of a file zoo writes: writing through it would
    overwrite whatever it points at, anywhere the user can write."""
    if path.is_symlink():
        raise UsageError(
            f"{path} is a symbolic link where zoo keeps its own file; zoo does not write through links; "
            f"fix: remove the link (rm {path}) and run again"
        )


def open_new(path: Path) -> BinaryIO:
    """``path`` created for writing (binary), never through a link: a link or any file already there is
    replaced by a new file (``O_EXCL | O_NOFOLLOW``), so nothing it pointed at is touched."""
    if os.path.lexists(path):
        path.unlink()  # removes a link itself, never its target
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def atomic_write(path: Path, fsync: bool = False) -> Iterator[BinaryIO]:
    """``path`` written whole or not at all: the block writes a new temporary file beside it (``mkstemp``:
    ``O_EXCL | O_NOFOLLOW``) that is renamed over ``path`` only when the block succeeds, with the
    permissions of a normal new file; on any failure the temporary file is removed and ``path`` is as it
    was. A link in ``path``'s place is refused rather than replaced, so the user learns of it. Every file
    zoo writes in place goes through here; folders go through ``staging``. ``fsync``: on disk before the
    rename (a training checkpoint that a power loss must not leave empty under its final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON, atomically (``atomic_write``)."""
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def normal_permissions(folder: Path) -> None:
    """Files written through mkstemp-style APIs (safetensors among them) can be 0600; make them 0644-like."""
    mode = 0o666 & ~_umask()
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.chmod(p, mode)


@contextlib.contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``final``; swapped onto it only when the block succeeds.

    The old ``final`` is renamed aside before the new one is renamed in and removed only after, so
    an interrupt at any point leaves either the old folder or the new one, never neither or a mix."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield tmp
        normal_permissions(tmp)
        swap_in(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_in(new: Path, final: Path) -> None:
    """Replace folder ``final`` by ``new`` with two renames; the old copy is removed last."""
    os.chmod(new, 0o777 & ~_umask())  # mkdtemp makes 0700
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def clear_partials(parent: Path) -> None:
    """Remove leftovers of interrupted stages (``.*.partial-*`` / ``.*.old-*`` folders)."""
    for pattern in (".*.partial-*", ".*.old-*"):
        for p in parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def is_disk_full(e: BaseException) -> bool:
    """Whether an exception (an OSError, or a backend's wrapped one such as safetensors') means ENOSPC."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(cause) or "Disk quota exceeded" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def size_text(n: float) -> str:
    """Bytes as people read them: kB below a MB, MB below a GB, GB above."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def check_disk(folder: Path, need_bytes: float, what: str, option: str = "--workdir") -> None:
    """Fail before writing when ``folder``'s filesystem has less than ``need_bytes`` free."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise DiskSpaceError(
            f"not enough disk space in {folder} for {what}: about {size_text(need_bytes)} needed, {size_text(free)} free; "
            f"fix: free space or use {option} on a larger disk"
        )


def disk_full(folder: Path, what: str, option: str = "--workdir") -> DiskSpaceError:
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    return DiskSpaceError(
        f"the disk filled up while writing {what} in {folder} ({size_text(free)} free now); nothing was kept and earlier "
        f"results are intact; fix: free space or use {option} on a larger disk"
    )
