"""The release manifest, ``zoo-release.json``: what ``zoo pull`` checks every kept byte against.

build.json only covers the checkpoint, so a release also lists the card, its plot and eval results,
build.json and eval.json, each with size and sha256. The manifest is canonical JSON without
timestamps or versions, so identical content always gives identical bytes; its sha256 names the
release tag. Parsing is strict, since the manifest comes from a repo anyone may have written: any
surprise is a ``VerifyError`` before a single file is fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from zoo.errors import VerifyError
from zoo.publish.hub import check_path

MANIFEST = "zoo-release.json"
FORMAT = 1
MAX_BYTES = 16 << 20  # a manifest larger than this is not one zoo wrote
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


def dump(name: str, files: list[Entry]) -> bytes:
    """Canonical manifest bytes for recipe ``name``'s release of ``files``."""
    data = {
        "format": FORMAT,
        "name": name,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in sorted(files, key=lambda f: f.path)],
    }
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def tag_for(manifest: bytes) -> str:
    """The release tag: one per distinct content."""
    return f"release-{hashlib.sha256(manifest).hexdigest()[:12]}"


def parse(data: bytes, source: str) -> list[Entry]:
    """The entries of a downloaded manifest, every path checked; a ``VerifyError`` on anything odd."""

    def bad(why: str) -> VerifyError:
        return VerifyError(
            f"{source}: {MANIFEST} is malformed ({why}); nothing was kept; fix: ask the publisher to re-run `zoo push`"
        )

    if len(data) > MAX_BYTES:
        raise bad(f"{len(data)} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"not JSON: {type(e).__name__}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), list):
        raise bad(f"expected an object with format {FORMAT} and a files list")
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, f in enumerate(doc["files"]):
        if not isinstance(f, dict):
            raise bad(f"files[{i}] is not an object")
        path = check_path(f.get("path"), f"{source}'s {MANIFEST}")
        size, sha = f.get("size"), f.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"files[{i}] has no valid size")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise bad(f"files[{i}] has no valid sha256")
        if path.lower() in seen or path == MANIFEST:
            raise bad(f"{path!r} is listed twice")
        seen.add(path.lower())
        entries.append(Entry(path, size, sha))
    folders = {"/".join(e.path.split("/")[:i]).lower() for e in entries for i in range(1, e.path.count("/") + 1)}
    clash = sorted(e.path for e in entries if e.path.lower() in folders)
    if clash:
        raise bad(f"{clash[0]!r} is both a file and a folder")
    if "build.json" not in seen:
        raise bad("build.json is not listed")
    return entries


def check_build_json(data: bytes, entries: list[Entry], source: str) -> None:
    """build.json's checkpoint list must agree with the manifest (both came from the same push)."""
    listed = {e.path: e for e in entries}
    try:
        files = json.loads(data.decode("utf-8")).get("files")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        files = None
    if not isinstance(files, list):
        raise VerifyError(f"{source}: build.json lists no files; nothing was kept; fix: do not use this release")
    for f in files:
        path = f.get("path") if isinstance(f, dict) else None
        e = listed.get(path) if isinstance(path, str) else None
        if e is None or e.sha256 != f.get("sha256") or e.size != f.get("size"):
            raise VerifyError(
                f"{source}: build.json and {MANIFEST} disagree about {str(path)[:200]!r}; nothing was kept; "
                "fix: do not use this release"
            )
