"""One file of a pull, streamed with huggingface_hub's own HTTP client and never past its listed size.

``hf_hub_download`` learns a file's size from the server it downloads from and checks it only once
the whole file is on disk, so a server that lists 4 KB and streams 300 MB fills the disk first. Here
the size comes from the manifest (already checked against the tree listing) and the download stops
the moment the server sends more: a ``VerifyError`` (exit 10) with the partial file removed. The
request is huggingface_hub's (``hf_hub_url``, its headers and token, its shared client, which
``hub.prepare`` gave a timeout, its error classes), so endpoints, mirrors and authentication behave as
in every other Hub call. A download cut short by the network keeps its partial file in
``<staging>/.cache/zoo/`` (a folder no remote path can name) and a re-run resumes it with a Range
request; a server that ignores the Range starts it over.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from zoo.errors import VerifyError
from zoo.publish.manifest import MANIFEST
from zoo.untrusted import plain

CHUNK = 1 << 20
PARTIAL = Path(".cache") / "zoo"  # under the staging folder; hub.check_path refuses any remote path in .cache
_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")


def partial_path(staged: Path, path: str) -> Path:
    """One flat name per remote path: ``a`` and ``a.part/b`` cannot collide, no folders to make."""
    return staged / PARTIAL / f"{hashlib.sha256(path.encode()).hexdigest()[:32]}.part"


def _too_big(source: str, path: str, size: int) -> VerifyError:
    return VerifyError(
        f"{source}: the server sent more than the {size} bytes {MANIFEST} lists for {path!r}; the download was "
        "stopped and nothing was kept; fix: do not use this release, and report it to the publisher"
    )


def download(repo_id: str, path: str, commit: str, staged: Path, size: int, token: Any, source: str) -> Path:
    """``path`` at ``commit`` into ``staged``, at most ``size`` bytes; the file's path once whole."""
    try:  # counted as a download on the Hub, as hf_hub_download's requests are
        from huggingface_hub.utils._http import flag_as_download_call
    except ImportError:
        return _download(repo_id, path, commit, staged, size, token, source)
    return flag_as_download_call(_download)(repo_id, path, commit, staged, size, token, source)


def _download(repo_id: str, path: str, commit: str, staged: Path, size: int, token: Any, source: str) -> Path:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    from zoo.progress import reporter

    dest, part = staged / path, partial_path(staged, path)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.lstat().st_size if part.is_file() and not part.is_symlink() else 0
    if have > size or part.is_symlink():
        part.unlink()
        have = 0
    if have < size or size == 0:
        headers = build_hf_headers(token=token)
        headers["Accept-Encoding"] = "identity"  # the listed size is of the bytes themselves
        if have:
            headers["Range"] = f"bytes={have}-"
        with get_session().stream("GET", hf_hub_url(repo_id, path, revision=commit), headers=headers) as r:
            hf_raise_for_status(r)
            if have and r.status_code == 206:
                m = _RANGE.fullmatch(r.headers.get("Content-Range", ""))
                if m is None or int(m.group(1)) != have:
                    raise VerifyError(f"{source}: the server answered a resume of {path!r} with another range; nothing was kept")
            else:
                have = 0  # a full answer: start over
            declared = r.headers.get("Content-Length", "")
            if declared.isdigit() and r.headers.get("Content-Encoding", "identity") == "identity" and have + int(declared) > size:
                part.unlink(missing_ok=True)
                raise _too_big(source, path, size)
            tick = reporter(f"downloading {plain(path, 60)}") if size > 64 * CHUNK else None
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if have else os.O_TRUNC)
            with os.fdopen(os.open(part, flags, 0o644), "wb") as f:
                done = have
                for chunk in r.iter_bytes(CHUNK):
                    done += len(chunk)
                    if done > size:  # not one byte past what the manifest lists
                        f.close()
                        part.unlink(missing_ok=True)
                        raise _too_big(source, path, size)
                    f.write(chunk)
                    if tick is not None:
                        tick(done, size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)
    return dest
