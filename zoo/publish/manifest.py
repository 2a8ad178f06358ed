"""The release manifest, ``zoo-release.json``: what ``zoo pull`` checks every kept byte against.

build.json only covers the checkpoint, so a release also lists the card, its plot and eval results, its exports,
build.json and eval.json, each with size and sha256. Since format 2 it also says which release it is:
the recipe, the repo it was pushed to, the recipe's sha256, and when the build and its evaluation
were made (build.json's and eval.json's ``created``). A signature over the manifest then proves all
of that, so a validly signed release of another variant, or of another repo, is refused, and an older
release re-tagged as the newest can be told apart. Format 3 is format 2 for a packed release (#32: a native
method's ``zoo-packed`` checkpoint): it adds ``unpacked_sha256``, the hash of the 16-bit checkpoint the packed
files decode to, so a signature proves ``zoo pull --unpack``'s output as well, and build.json's
``packed_files`` (not its ``files``: the 16-bit checkpoint is not published) are what the release must list.
A zoo that reads only formats 1-2 refuses a packed release as a format it does not know.

The manifest is canonical JSON of the release's content only (no time of pushing), so identical content
always gives identical bytes; its sha256 names the release tag. Parsing is strict, since the manifest
comes from a repo anyone may have written: any surprise is a ``VerifyError`` before a single file is
fetched. Format 1 manifests (no identity) are still read, but never accepted as signed proof of a release.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from zoo.errors import VerifyError
from zoo.parse import LimitError, load_json
from zoo.publish.hub import check_path
from zoo.untrusted import plain

MANIFEST = "zoo-release.json"
FORMAT = 2
PACKED_FORMAT = 3  # format 2 + unpacked_sha256: a packed release
READABLE = (1, 2, 3)
MAX_BYTES = 16 << 20  # a manifest larger than this is not one zoo wrote
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RECIPE = re.compile(r"[a-z0-9][a-z0-9._-]{0,95}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Identity:
    """Which release a manifest is: inside the signed bytes from format 2 on."""

    name: str  # the recipe
    repo_id: str  # the repo it was pushed to
    recipe_sha256: str  # build.json's recipe_sha256: the exact recipe the build was made from
    built: str  # build.json's created (ISO 8601, UTC)
    evaluated: str | None  # eval.json's created, when the release has one

    def order(self) -> tuple[datetime, datetime | None]:
        return order(self.built, self.evaluated)


def order(built: str, evaluated: str | None) -> tuple[datetime, datetime | None]:
    """What makes one release newer than another: a later build, then a later evaluation of it."""
    return _when(built), _when(evaluated) if evaluated else None


@dataclass(frozen=True)
class Manifest:
    format: int
    name: str | None  # format 1 named the recipe, unchecked
    identity: Identity | None  # None for format 1
    entries: list[Entry] = field(default_factory=list)
    unpacked_sha256: str | None = None  # format 3: what the packed checkpoint decodes to (``zoo.packed.store``)


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def newer(a: tuple[datetime, datetime | None], b: tuple[datetime, datetime | None]) -> bool:
    """Whether ordering ``a`` is strictly after ``b`` (a release without an evaluation sorts first)."""
    if a[0] != b[0]:
        return a[0] > b[0]
    return a[1] is not None and (b[1] is None or a[1] > b[1])


def dump(identity: Identity, files: list[Entry], unpacked_sha256: str | None = None) -> bytes:
    """Canonical manifest bytes for ``identity``'s release of ``files``; with ``unpacked_sha256``, a packed
    release's (format 3)."""
    data: dict[str, object] = {
        "format": FORMAT if unpacked_sha256 is None else PACKED_FORMAT,
        "name": identity.name,
        "repo_id": identity.repo_id,
        "recipe_sha256": identity.recipe_sha256,
        "built": identity.built,
        "evaluated": identity.evaluated,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in sorted(files, key=lambda f: f.path)],
    }
    if unpacked_sha256 is not None:
        data["unpacked_sha256"] = unpacked_sha256
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def tag_for(manifest: bytes) -> str:
    """The release tag: one per distinct content."""
    return f"release-{hashlib.sha256(manifest).hexdigest()[:12]}"


def _bad(source: str, why: str) -> VerifyError:
    return VerifyError(
        f"{source}: {MANIFEST} is malformed ({plain(why)}); nothing was kept; fix: ask the publisher to re-run `zoo push`"
    )


def _timestamp(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        return _when(value).tzinfo is not None
    except ValueError:
        return False


def _identity(doc: dict[str, object], source: str) -> Identity:
    name, repo, recipe_sha = doc.get("name"), doc.get("repo_id"), doc.get("recipe_sha256")
    built, evaluated = doc.get("built"), doc.get("evaluated")
    if not isinstance(name, str) or not _RECIPE.fullmatch(name):
        raise _bad(source, "no valid recipe name")
    if not isinstance(repo, str) or not _REPO.fullmatch(repo):
        raise _bad(source, "no valid repo_id")
    if not isinstance(recipe_sha, str) or not _SHA256.fullmatch(recipe_sha):
        raise _bad(source, "no valid recipe_sha256")
    if not _timestamp(built) or not (evaluated is None or _timestamp(evaluated)):
        raise _bad(source, "no valid built/evaluated time")
    return Identity(name, repo, recipe_sha, str(built), None if evaluated is None else str(evaluated))


def parse(data: bytes, source: str) -> Manifest:
    """A downloaded manifest, every path checked; a ``VerifyError`` on anything odd."""
    if len(data) > MAX_BYTES:
        raise _bad(source, f"{len(data)} bytes")
    try:  # within zoo.parse's nesting limit: a manifest of nested brackets is malformed, not a RecursionError
        doc = load_json(data, MAX_BYTES)
    except LimitError as e:
        raise _bad(source, str(e)) from None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _bad(source, f"not JSON: {type(e).__name__}") from None
    if isinstance(doc, dict) and isinstance(doc.get("format"), int) and doc["format"] > max(READABLE):
        raise VerifyError(
            f"{source}: {MANIFEST} is format {doc['format']}, written by a newer zoo (this one reads "
            f"{', '.join(map(str, READABLE))}); nothing was kept; fix: upgrade zoo (pip install -U zoo), then pull again"
        )
    if not isinstance(doc, dict) or doc.get("format") not in READABLE or not isinstance(doc.get("files"), list):
        raise _bad(source, f"expected an object with format {', '.join(map(str, READABLE))} and a files list")
    identity = _identity(doc, source) if doc["format"] >= 2 else None
    unpacked = doc.get("unpacked_sha256") if doc["format"] >= PACKED_FORMAT else None
    if doc["format"] >= PACKED_FORMAT and (not isinstance(unpacked, str) or not _SHA256.fullmatch(unpacked)):
        raise _bad(source, "a packed release (format 3) with no valid unpacked_sha256")
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, f in enumerate(doc["files"]):
        if not isinstance(f, dict):
            raise _bad(source, f"files[{i}] is not an object")
        path = check_path(f.get("path"), f"{source}'s {MANIFEST}")
        size, sha = f.get("size"), f.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad(source, f"files[{i}] has no valid size")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _bad(source, f"files[{i}] has no valid sha256")
        if path.lower() in seen or path == MANIFEST:
            raise _bad(source, f"{path!r} is listed twice")
        seen.add(path.lower())
        entries.append(Entry(path, size, sha))
    folders = {"/".join(e.path.split("/")[:i]).lower() for e in entries for i in range(1, e.path.count("/") + 1)}
    clash = sorted(e.path for e in entries if e.path.lower() in folders)
    if clash:
        raise _bad(source, f"{clash[0]!r} is both a file and a folder")
    if "build.json" not in seen:
        raise _bad(source, "build.json is not listed")
    return Manifest(doc["format"], name, identity, entries, unpacked)


def _json(data: bytes | None) -> dict[str, object] | None:
    try:
        doc = load_json(data, MAX_BYTES) if data is not None else None
    except ValueError:  # not JSON, not UTF-8, or past zoo.parse's limits (LimitError)
        return None
    return doc if isinstance(doc, dict) else None


def check_build_json(data: bytes, manifest: Manifest, source: str, eval_json: bytes | None = None) -> None:
    """build.json's checkpoint list must agree with the manifest (both came from the same push), and so
    must the identity a format 2 manifest states: recipe, recipe sha256, build and evaluation times."""
    listed = {e.path: e for e in manifest.entries}
    build = _json(data)
    key = "files" if manifest.unpacked_sha256 is None else "packed_files"  # a packed release publishes packed/
    files = build.get(key) if build is not None else None
    if build is None or not isinstance(files, list) or (key == "packed_files" and not files):
        what = "files" if key == "files" else "packed files, yet the release is packed"
        raise VerifyError(f"{source}: build.json lists no {what}; nothing was kept; fix: do not use this release")
    for f in files:
        path = f.get("path") if isinstance(f, dict) else None
        e = listed.get(path) if isinstance(path, str) else None
        if e is None or e.sha256 != f.get("sha256") or e.size != f.get("size"):
            raise VerifyError(
                f"{source}: build.json and {MANIFEST} disagree about {plain(repr(str(path)))}; nothing was kept; "
                "fix: do not use this release"
            )
    who = manifest.identity
    if who is None:
        return
    ev = _json(eval_json)
    mismatch = [
        k
        for k, mine, theirs in (
            ("name", who.name, build.get("name")),
            ("recipe_sha256", who.recipe_sha256, build.get("recipe_sha256")),
            ("built", who.built, build.get("created")),
            ("evaluated", who.evaluated, ev.get("created") if ev is not None else None),
        )
        if mine != theirs
    ]
    if mismatch:
        raise VerifyError(
            f"{source}: build.json or eval.json and {MANIFEST} disagree about {', '.join(mismatch)}; nothing was kept; "
            "fix: do not use this release"
        )


def check_packed_config(data: bytes, manifest: Manifest, source: str) -> None:
    """A packed release's config.json must record the unpacked hash its manifest states: ``zoo pull --unpack``
    checks the decoded weights against the config's, so it must be the one the (signed) manifest names."""
    config = _json(data)
    q = config.get("quantization_config") if config is not None else None
    if not isinstance(q, dict) or q.get("unpacked_sha256") != manifest.unpacked_sha256:
        raise VerifyError(
            f"{source}: config.json does not record the unpacked_sha256 of {MANIFEST}; nothing was kept; "
            "fix: do not use this release"
        )
