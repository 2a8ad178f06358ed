"""Published variants, read back from the Hub: each catalog recipe's newest release, its small records only.

A release made in one job must see every variant released before it, on any machine: the cards' sibling
tables, the site and the Collection notes are rendered from the published records, not only from the
workdir at hand. For each recipe whose repo exists, the newest ``release-*`` tag on main is resolved to one
commit (as ``zoo pull`` does) and, at that commit, the manifest and the few files beside it that describe
the build are fetched: build.json, eval.json, bench.json and the checkpoint's config.json (for the KV-cache
figure). Never a weight. One request per file, each stopped at the size the manifest lists (``fetch.py``)
and at ``MAX_RECORD_BYTES``, checked against the manifest's sha256, parsed within ``zoo.parse``'s limits
and read through the record classes; build.json must agree with the manifest (``check_build_json``).

Everything here came from a repo anyone with write access may have written: a release that fails any
check is *unreadable*, with one plain line saying why (logged, and kept in ``Published.unreadable`` for the
site), and never stops the others. A Hub that cannot be reached, or ``HF_HUB_OFFLINE``, gives one warning
line and no published variants: the renderers then show the workdir alone, as before. Downloads are staged
in a temporary folder inside the workdir, removed before returning: nothing is cached anywhere.

Only huggingface_hub and zoo's own records are imported: this runs on the light install (no torch).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, EvalRecord, PushRecord
from zoo.records.base import Record
from zoo.untrusted import plain
from zoo.variant.model import Variant
from zoo.variant.read import assemble

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Record)

RECORDS = ("build.json", "eval.json", "bench.json", "config.json")  # what a release says about its build
MAX_RECORD_BYTES = 8 << 20  # far above any record zoo writes (a 70B build.json is tens of kB)
CONFIG_KEYS = ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size", "head_dim",
               "max_position_embeddings")  # fmt: skip  # what the serving-memory figure reads
_RELEASE_TAG = re.compile(r"release-[0-9a-f]{12}")


@dataclass(frozen=True)
class Published:
    """What the Hub holds for a catalog: readable releases by recipe name, and why the others are not."""

    variants: dict[str, Variant] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # recipe name -> one plain line
    reached: bool = False  # whether the Hub was read at all (False: offline, unreachable or --local-only)

    def fingerprint(self) -> str:
        """Changes whenever a release read here changes (a card rendered from them is then stale)."""
        h = hashlib.sha256()
        for name in sorted(self.variants):
            v = self.variants[name]
            h.update(f"{name}\0{v.build_sha256}\0{v.push.commit if v.push else ''}\0".encode())
        for name in sorted(self.unreadable):
            h.update(f"{name}\0unreadable\0{self.unreadable[name]}\0".encode())
        return h.hexdigest()


class Unreadable(Exception):
    """One release that failed a check; its message is the one line the site and the log show."""


def wanted(from_hub: bool | None) -> bool:
    """``--from-hub`` (True), ``--local-only`` (False), or neither (None): the Hub unless HF_HUB_OFFLINE is set,
    which a user sets to mean exactly that. Reading public releases needs no token."""
    if from_hub is not None:
        return from_hub
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE


def read_published(recipes: Iterable[Recipe], workdir: Path, from_hub: bool | None = None) -> Published:
    """Every readable release of ``recipes`` (see the module's docstring); empty with one warning when the
    Hub cannot be read, and quietly empty under ``--local-only``."""
    from zoo.publish import hub

    if from_hub is False:
        return Published()
    if not wanted(from_hub) or hub.offline_mode():
        log.warning("HF_HUB_OFFLINE is set: only this workdir's variants are shown; fix: unset it to include every "
                    "published variant, or pass --local-only")  # fmt: skip
        return Published()
    from huggingface_hub import HfApi

    hub.prepare()
    api = HfApi()
    variants: dict[str, Variant] = {}
    unreadable: dict[str, str] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".zoo-published-", dir=workdir) as tmp:
        for recipe in recipes:
            try:
                v = _read_one(api, recipe, Path(tmp) / recipe.name)
            except Unreadable as e:
                unreadable[recipe.name] = str(e)
                log.warning(
                    "%s: its published release is unreadable (%s); only this workdir's records of it are shown", recipe.name, e
                )
                continue
            except _Unreachable as e:
                log.warning("%s; only this workdir's variants are shown; fix: check the network and HF_ENDPOINT, "
                            "or pass --local-only", e)  # fmt: skip
                return Published()
            if v is not None:
                variants[recipe.name] = v
    log.info("read %d published variants from %s (%d unreadable)", len(variants), hub.endpoint(), len(unreadable))
    return Published(variants, unreadable, True)


class _Unreachable(Exception):
    """No answer from the Hub at all: reading the other recipes would only wait as long again."""


def _read_one(api: Any, recipe: Recipe, staged: Path) -> Variant | None:
    """``recipe``'s newest release as a Variant; None when its repo does not exist (or holds no release)."""
    import httpx
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    from zoo.errors import ZooError
    from zoo.publish import hub

    repo_id = recipe.repo_id
    try:
        hub.check_repo_id(repo_id)
        found = _newest_release(api, repo_id)
        if found is None:
            return None
        return _records(api, recipe, repo_id, *found, staged)
    except GatedRepoError:
        raise Unreadable(f"{repo_id} is gated: accept its terms with the account of HF_TOKEN") from None
    except RepositoryNotFoundError:
        return None  # never published (or private to someone else): nothing to show
    except (HfHubHTTPError, httpx.HTTPError, OSError) as e:
        if hub.never_connected(e) or hub.timed_out(e):
            raise _Unreachable(f"the Hub at {hub.endpoint()} could not be reached ({type(hub.chain(e)[-1]).__name__})") from None
        status = hub.status_of(e)
        raise Unreadable(f"HTTP {status}" if status else f"{type(e).__name__}") from None
    except (ZooError, ValueError, TypeError, KeyError) as e:  # VerifyError, LimitError and malformed JSON among them
        raise Unreadable(plain(str(e).splitlines()[0] if str(e) else type(e).__name__, 300)) from None


def _newest_release(api: Any, repo_id: str) -> tuple[str, str] | None:
    """(tag, commit) of the newest release on main, as ``zoo pull`` picks it; None when there is none."""
    from zoo.publish import hub

    refs = hub.call(api.list_repo_refs, repo_id)
    releases = {t.target_commit: t.name for t in refs.tags if _RELEASE_TAG.fullmatch(t.name)}
    main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
    if not releases or main is None:
        return None
    if main not in releases:  # a commit after the last release (a card edited by hand, say): walk back to it
        history = hub.call(lambda: list(api.list_repo_commits(repo_id)))
        main = next((c.commit_id for c in history if c.commit_id in releases), None)
        if main is None:
            return None
    return releases[main], hub.check_commit(main, f"{repo_id}@{releases[main]}")


def _records(api: Any, recipe: Recipe, repo_id: str, tag: str, commit: str, staged: Path) -> Variant:
    from zoo.publish import hub
    from zoo.publish.fetch import download
    from zoo.publish.manifest import MANIFEST, MAX_BYTES, check_build_json, parse

    source = f"{repo_id}@{tag}"
    raw = hub.call(download, repo_id, MANIFEST, commit, staged, MAX_BYTES, api.token, source).read_bytes()
    manifest = parse(raw, source)
    who = manifest.identity
    if who is None:
        raise Unreadable(f"{MANIFEST} (format {manifest.format}) does not say which release it is")
    if who.name != recipe.name or who.repo_id.lower() != repo_id.lower():
        raise Unreadable(f"{MANIFEST} is the release of {plain(who.name, 100)} ({plain(who.repo_id, 200)})")
    listed = {e.path: e for e in manifest.entries}
    files: dict[str, bytes] = {}
    for path in RECORDS:
        entry = listed.get(path)
        if entry is None:
            continue
        if entry.size > MAX_RECORD_BYTES:
            raise Unreadable(f"{path} is {entry.size} bytes, larger than any record zoo writes")
        data = hub.call(download, repo_id, path, commit, staged, entry.size, api.token, source).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise Unreadable(f"{path} does not match its sha256 in {MANIFEST}")
        files[path] = data
    if "build.json" not in files:
        raise Unreadable(f"{MANIFEST} lists no build.json")
    check_build_json(files["build.json"], manifest, source, files.get("eval.json"))
    build = _record(BuildRecord, files["build.json"], "build.json")
    evaluation = _record(EvalRecord, files["eval.json"], "eval.json") if "eval.json" in files else None
    bench = _record(BenchRecord, files["bench.json"], "bench.json") if "bench.json" in files else None
    if build is None or build.name != recipe.name:
        raise Unreadable("build.json is of another recipe")
    datetime.fromisoformat(build.created)  # the merge compares it with a local build's: ValueError when it is no date
    sha = hashlib.sha256(files["build.json"]).hexdigest()
    push = PushRecord(
        repo_id=repo_id, revision=tag, commit=commit, tag=tag, build_sha256=sha, endpoint=hub.endpoint(),
        pushed=who.evaluated or who.built,  # the release's own time: the Hub's commit date is one more request
    )  # fmt: skip
    return assemble(recipe, build, evaluation, bench, push, sha, _config(files.get("config.json")))


def _record(cls: type[R], data: bytes, path: str) -> R:
    """``data`` as a ``cls`` record, or ``Unreadable`` naming ``path``: within zoo.parse's limits, a mapping,
    no NaN or infinity (JSON has none; Python's reader accepts them), fitting the record's model."""
    from zoo.parse import load_json

    doc = load_json(data, MAX_RECORD_BYTES)
    if not isinstance(doc, dict) or not _finite(doc):
        raise Unreadable(f"{path} is not a zoo record (not an object, or a number that is not finite)")
    record = cls.parse(doc)
    if record is None:
        raise Unreadable(f"{path} does not fit zoo's {cls.STAGE} record (malformed, or of another zoo version)")
    return record


def _finite(value: Any) -> bool:
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return True


def _config(data: bytes | None) -> dict[str, Any] | None:
    """The language model's config (a multimodal one's ``text_config``), for the KV-cache figure only; a
    malformed one only leaves that figure out."""
    from zoo.parse import load_json

    try:
        config = load_json(data, MAX_RECORD_BYTES) if data is not None else None
    except ValueError:
        return None
    text = config.get("text_config", config) if isinstance(config, dict) else None
    if not isinstance(text, dict):
        return None
    return {k: v for k in CONFIG_KEYS if type(v := text.get(k)) is int and 0 < v < 1 << 24}
