"""The Hub store of 16-bit baselines: a base measured once, on one machine, is reused by every later job.

A 70B baseline is hours of GPU time, and ``<workdir>/_baselines/`` is per machine, so each runner of a
release would measure it again. The store is one dataset repo per namespace (``<org>/zoo-baselines``, the
org being the recipe's Hub owner; ``$ZOO_BASELINE_REPO`` overrides it) holding one file per base and suite:
``<base repo id>/<base commit>/<suite sha256>.json``. A built-in base files under ``zoo-builtin/<name>``
with its weights' sha256 as the commit. A local base (``base.path``) or one pinned to a branch has no
identity another machine can check, so it is never shared.

The file is a ``SharedBaseline``: the suite itself, its hash, the base it was measured on and the
``BaselineRecord``. Whoever can write the repo decides what it holds, so a file is used only when it is
within a size cap, parses within ``zoo.parse``'s limits, is a record this zoo reads, and names exactly the
base commit and the suite it is filed under (the suite re-hashed here); anything else is ignored with one
warning line and the base is measured again. Reading never fails an eval: a Hub that cannot be reached is
a warning, and the baseline is measured as if there were no store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from zoo.errors import TokenError, UsageError, VerifyError
from zoo.publish import hub
from zoo.untrusted import plain

if TYPE_CHECKING:
    from zoo.recipe import Recipe
    from zoo.records import BaselineRecord

log = logging.getLogger(__name__)
ENV_REPO = "ZOO_BASELINE_REPO"
STORE_NAME = "zoo-baselines"
BUILTIN_OWNER = "zoo-builtin"  # the folder built-in bases file under (no Hub repo has their weights)
MAX_BYTES = 8 << 20  # a baseline with every task's details is ~100 kB; nothing bigger is downloaded
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SUITE = re.compile(r"[0-9a-f]{64}")
SCHEMA_VERSION = 1


class SharedBaseline(BaseModel):
    """One file of the store: what was measured, on what, with which suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    base_repo: str  # the base's repo id (zoo-builtin/<name> for a built-in)
    base_commit: str  # its commit (a built-in's weights sha256)
    suite_sha256: str
    suite: dict[str, Any]
    baseline: dict[str, Any]  # a BaselineRecord, parsed through its own class


@dataclass(frozen=True)
class Location:
    """Where one base's baseline for one suite lives in the store."""

    repo_id: str  # the store's dataset repo
    base_repo: str
    base_commit: str
    suite_sha256: str
    private: bool  # a new store repo's visibility: the recipe's

    @property
    def path(self) -> str:
        return f"{self.base_repo}/{self.base_commit}/{self.suite_sha256}.json"

    def where(self) -> str:
        return f"{self.repo_id}:{self.path}"


def suite_sha256(suite: dict[str, Any]) -> str:
    """The suite's hash as zoo.evaluation.run computes it (its cache key), recomputed from a remote file."""
    return hashlib.sha256(json.dumps(suite, sort_keys=True).encode()).hexdigest()


def store_repo(recipe: Recipe) -> str:
    """``$ZOO_BASELINE_REPO``, else ``<the recipe's Hub owner>/zoo-baselines``; checked before any request."""
    raw = os.environ.get(ENV_REPO, "").strip()
    if raw:
        try:
            return hub.check_repo_id(raw)
        except UsageError:
            raise UsageError(
                f"{ENV_REPO}={plain(raw, 100)!r} (from the environment) is not a Hub repo id; "
                "fix: set it to owner/name, such as my-org/zoo-baselines, or unset it"
            ) from None
    owner = recipe.hub.repo_id.split("/")[0] if recipe.hub.repo_id else recipe.hub.org
    return hub.check_repo_id(f"{owner}/{STORE_NAME}")


def unshareable(recipe: Recipe) -> str | None:
    """Why this recipe's baseline cannot go through the store, or None when it can."""
    b = recipe.base
    if hub.offline_mode():
        return "HF_HUB_OFFLINE is set"
    if b.path is not None:
        return "its base is a local folder, which no other machine can check it against"
    if b.repo_id is not None and not (b.revision and re.fullmatch(r"[0-9a-f]{40}", b.revision)):
        return f"its base revision {plain(b.revision, 60)!r} is not a commit, so the base it names can move"
    return None


def location(recipe: Recipe, suite: dict[str, Any], recipe_dir: Path) -> Location | None:
    """Where the store keeps this recipe's baseline for ``suite``; None when it cannot be shared
    (``unshareable`` says why). A built-in base is resolved here (cheap) for its weights' hash."""
    if unshareable(recipe):
        return None
    b = recipe.base
    if b.builtin is not None:
        from zoo.loader import resolve

        base_repo, commit = f"{BUILTIN_OWNER}/{b.builtin}", str(resolve(recipe, recipe_dir).identity["weights_sha256"])
    else:
        base_repo, commit = str(b.repo_id), str(b.revision)
    hub.check_repo_id(base_repo)
    if not _HEX.fullmatch(commit):
        raise VerifyError(f"{recipe.name}: base commit {plain(commit, 80)!r} is not a hash; fix: pin base.revision to a commit")
    loc = Location(store_repo(recipe), base_repo, commit, suite_sha256(suite), recipe.hub.private)
    hub.check_path(loc.path, "the baseline store")
    return loc


def _matches(record: BaselineRecord, loc: Location) -> bool:
    """Whether the record was measured on the base its path names."""
    base = record.base
    if loc.base_repo.startswith(BUILTIN_OWNER + "/"):
        return bool(base.get("builtin") == loc.base_repo.split("/", 1)[1] and base.get("weights_sha256") == loc.base_commit)
    return bool(base.get("repo_id") == loc.base_repo and base.get("commit") == loc.base_commit)


def checked(data: bytes, loc: Location) -> BaselineRecord:
    """The record in a store file, or ``VerifyError`` saying why it is not the one ``loc`` names."""
    from zoo.parse import load_json
    from zoo.records import BaselineRecord

    try:
        raw = load_json(data, MAX_BYTES)
    except (ValueError, UnicodeDecodeError) as e:  # LimitError is a ValueError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VerifyError(f"it is not JSON zoo reads ({plain(first, 80)})") from None
    try:
        shared = SharedBaseline.model_validate(raw)
    except ValidationError:
        raise VerifyError("it is not a zoo baseline file") from None
    if shared.schema_version != SCHEMA_VERSION:
        raise VerifyError(f"it is of store format {shared.schema_version}, not {SCHEMA_VERSION}")
    if (shared.base_repo, shared.base_commit) != (loc.base_repo, loc.base_commit):
        raise VerifyError(f"it names another base ({plain(shared.base_repo, 80)}@{plain(shared.base_commit, 64)})")
    if shared.suite_sha256 != loc.suite_sha256 or suite_sha256(shared.suite) != loc.suite_sha256:
        raise VerifyError("its suite is not the one it is filed under")
    record = BaselineRecord.parse(shared.baseline)
    if record is None:
        raise VerifyError("its baseline is not a record this zoo reads")
    if not _matches(record, loc):
        raise VerifyError("its record was measured on another base")
    if any(v is not None and not math.isfinite(v) for v in record.metrics.values()):
        raise VerifyError("its metrics are not finite numbers")
    return record


def _download(loc: Location) -> tuple[bytes, str] | None:
    """The file's bytes (never more than ``MAX_BYTES`` read) and the store commit; None when not there."""
    from huggingface_hub import constants, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    hub.prepare()
    url = hf_hub_url(loc.repo_id, loc.path, repo_type="dataset", revision="main", endpoint=constants.ENDPOINT)
    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"  # the cap is on the bytes themselves
    too_big = VerifyError(f"it is larger than {MAX_BYTES} bytes")
    with get_session().stream("GET", url, headers=headers) as r:
        try:
            hf_raise_for_status(r)
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
            return None
        declared = r.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BYTES:
            raise too_big
        data = bytearray()
        for chunk in r.iter_bytes(1 << 16):
            data += chunk
            if len(data) > MAX_BYTES:
                raise too_big
        commit = r.headers.get("X-Repo-Commit", "")
    return bytes(data), commit if re.fullmatch(r"[0-9a-f]{40}", commit) else "main"


def fetch_baseline(loc: Location) -> BaselineRecord | None:
    """The store's baseline for ``loc``, or None (not there, unreachable, or refused: one warning line)."""
    try:
        got = hub.call(_download, loc)
    except VerifyError as e:
        log.warning("ignoring the shared baseline %s: %s; measuring the base here", plain(loc.where()), e)
        return None
    except Exception as e:  # noqa: BLE001 - a store that cannot be read is no store, never a failed eval
        if not hub.network_failure(e):
            raise
        why = hub.translate(e, loc.repo_id, "reading the baseline store", "check the network and HF_ENDPOINT", writing=False)
        log.warning("could not read the baseline store (%s); measuring the base here", plain(str(why), 300))
        return None
    if got is None:
        log.info("the baseline store %s has none for %s@%s and this suite", loc.repo_id, loc.base_repo, loc.base_commit[:12])
        return None
    data, commit = got
    try:
        record = checked(data, loc)
    except VerifyError as e:
        log.warning("ignoring the shared baseline %s@%s: %s; measuring the base here", plain(loc.where()), commit[:12], e)
        return None
    log.info("the Hub store %s@%s has the 16-bit baseline %s", loc.repo_id, commit[:12], loc.path)
    return record


def has_token() -> bool:
    """Whether a token is there to share with (whether it may write is learnt at the upload)."""
    from huggingface_hub import get_token

    return bool(get_token())


def publish_baseline(loc: Location, record: BaselineRecord, suite: dict[str, Any], create: bool = True) -> str | None:
    """``record`` into the store at ``loc``; the commit made. A missing store's dataset repo is made with
    ``create``; without it (a release, which should not make repos in an org unasked) nothing is shared
    and None returned."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not has_token():
        raise TokenError(f"sharing the baseline needs a Hugging Face token that may write {loc.repo_id}; fix: set HF_TOKEN")
    if suite_sha256(suite) != loc.suite_sha256:
        raise UsageError("the suite to share is not the one its location was made for; fix: report this as a zoo bug")
    shared = SharedBaseline(
        base_repo=loc.base_repo, base_commit=loc.base_commit, suite_sha256=loc.suite_sha256, suite=suite,
        baseline=record.model_dump(mode="json"),
    )  # fmt: skip
    data = (json.dumps(shared.model_dump(mode="json"), indent=1, sort_keys=True) + "\n").encode()
    hub.prepare()
    api = HfApi(token=get_token())
    try:
        if create:
            hub.call(api.create_repo, loc.repo_id, repo_type="dataset", private=loc.private, exist_ok=True)
        elif not hub.call(api.repo_exists, loc.repo_id, repo_type="dataset"):
            log.info("the baseline store %s does not exist; `zoo baseline` with --push makes it", loc.repo_id)
            return None
        info = hub.call(
            api.upload_file, path_or_fileobj=data, path_in_repo=loc.path, repo_id=loc.repo_id, repo_type="dataset",
            commit_message=f"zoo: baseline of {loc.base_repo}@{loc.base_commit[:12]}, suite {loc.suite_sha256[:12]}",
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - Hub and network errors become one line; the rest propagate
        if not (isinstance(e, HfHubHTTPError) or hub.network_failure(e)):
            raise
        if hub.status_of(e) in (401, 403):
            raise TokenError(
                f"the Hugging Face token may not write the baseline store {loc.repo_id} (HTTP {hub.status_of(e)}); "
                f"fix: use a token with write access to it, or set {ENV_REPO} to a dataset repo it may write"
            ) from None
        raise hub.translate(e, loc.repo_id, "sharing the baseline", "re-run `zoo baseline --push`", writing=True) from None
    commit = str(getattr(info, "oid", "") or "")
    log.info("shared the 16-bit baseline as %s@%s", loc.where(), commit[:12])
    return commit


__all__ = [
    "ENV_REPO", "Location", "SharedBaseline", "checked", "fetch_baseline", "location", "publish_baseline",
    "has_token", "store_repo", "suite_sha256", "unshareable",
]  # fmt: skip
