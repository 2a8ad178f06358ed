"""Rollback protection for ``zoo pull``: the newest release this user has verified, per Hub and repo.

A signature proves who made a release, not that it is their latest: whoever controls a repo's tags
can point "newest" at an older, validly signed release (one with a known flaw, say). So a pull
remembers, per endpoint, repo and signer (``--verify-with``'s key or identity; unsigned pulls apart,
so an unsigned release cannot raise the mark a signed one is held to), the tag, commit and ordering of
the newest release it verified. The ordering is inside the signed manifest (format 2): when the
build was made, then when it was evaluated. The newest release a later pull resolves (no
``--revision``) must not be older: if it is, the pull is refused (exit 10) unless ``--allow-older``;
an explicit ``--revision`` pulls what was asked, with a warning. Releases that differ only in their
card share an ordering and are not told apart.

The record is ``pulls.json`` in ``$ZOO_STATE_DIR``, else ``$XDG_STATE_HOME/zoo``, else
``~/.local/state/zoo``; it is replaced atomically under a lock, and an unreadable one is started over
with a warning (it protects, it never blocks a pull by being damaged).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.errors import VerifyError, ZooError
from zoo.lock import exclusive, now
from zoo.parse import load_json
from zoo.publish.manifest import Identity, newer, order
from zoo.untrusted import plain
from zoo.workdir import write_json

log = logging.getLogger(__name__)
FILE = "pulls.json"
MAX_STATE_BYTES = 16 << 20  # one entry per repo pulled: far below this


def state_dir() -> Path:
    if os.environ.get("ZOO_STATE_DIR"):
        return Path(os.environ["ZOO_STATE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "zoo"


def signer_of(verify_with: str | None, issuer: str | None) -> str:
    """Whose releases a record is about: a key by its content's sha256, a Sigstore identity and issuer."""
    if verify_with is None:
        return "unsigned"
    if verify_with.startswith("sigstore:"):
        return f"{verify_with} {issuer or ''}".strip()
    return "key:" + hashlib.sha256(Path(verify_with).expanduser().read_bytes()).hexdigest()


def _key(endpoint: str, repo_id: str, signer: str) -> str:
    return f"{endpoint} {repo_id.lower()} {signer}"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """``pulls.json``'s lock (``zoo.lock.exclusive``), waited for: another pull records in a moment."""
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive(folder / f"{FILE}.lock", {"since": now()}, mode=0o600):
        yield


def _read(folder: Path) -> dict[str, Any]:
    path = folder / FILE
    try:
        doc = load_json(path.read_bytes(), MAX_STATE_BYTES)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("%s is unreadable (%s); starting it over", path, type(e).__name__)
        return {}
    return doc if isinstance(doc, dict) else {}


def _order(record: dict[str, Any]) -> tuple[datetime, datetime | None] | None:
    try:
        return order(record["built"], record.get("evaluated"))
    except (KeyError, TypeError, ValueError):
        return None


def check(
    endpoint: str,
    repo_id: str,
    signer: str,
    release: Identity,
    commit: str,
    source: str,
    asked: str | None,
    allow_older: bool,
) -> None:
    """Refuse (``VerifyError``) a newest release older than one verified before, unless asked for."""
    seen = _read(state_dir()).get(_key(endpoint, repo_id, signer))
    before = _order(seen) if isinstance(seen, dict) else None
    if seen is None or before is None or seen.get("commit") == commit or not newer(before, release.order()):
        return
    what = (
        f"{source} was built {plain(release.built)}, before {plain(seen.get('tag'))} (commit {plain(seen.get('commit'))}, "
        f"built {plain(seen.get('built'))}), which this user verified from {repo_id} on {plain(seen.get('verified'))}"
    )
    if asked is not None or allow_older:
        log.warning("%s; pulling it as %s", what, "--allow-older allows" if allow_older else "--revision asks")
        return
    raise VerifyError(
        f"{what}: the repo's newest release is older than one already verified (rolled back?); nothing was written; "
        f"fix: pass --allow-older to accept it, or --revision {plain(seen.get('tag'))} to pull the newer one"
    )


def record(endpoint: str, repo_id: str, signer: str, release: Identity, commit: str, tag: str) -> None:
    """Remember ``release`` as verified when it is not older than what is remembered already."""
    folder = state_dir()
    try:
        with _locked(folder):
            doc = _read(folder)
            key = _key(endpoint, repo_id, signer)
            seen = doc.get(key)
            before = _order(seen) if isinstance(seen, dict) else None
            if before is not None and newer(before, release.order()):
                return  # an older release pulled on purpose does not lower the mark
            doc[key] = {
                "tag": tag,
                "commit": commit,
                "built": release.built,
                "evaluated": release.evaluated,
                "verified": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            write_json(folder / FILE, doc)
    except (OSError, ZooError) as e:  # a link at pulls.json (refused by write_json) too: it never fails a pull
        why = e.strerror if isinstance(e, OSError) else str(e).split("; fix:")[0]
        log.warning("cannot record the verified release in %s (%s); later pulls cannot tell a rollback", folder, why)
