"""The network half of ``zoo push``: compare with the remote branch, commit exact operations, tag.

Kept apart from push.py, which decides what a release is (and imports this, never the reverse):
here the token is checked, and every Hub call goes through
``hub.call`` (timeouts, 429 retries) and every failure becomes one line. Operations name files by
their exact paths (``CommitOperationAdd`` / ``CommitOperationDelete``): ``upload_folder``'s
``delete_patterns`` are globs, so a remote file named ``*.bin`` or ``[ab].txt`` would delete others.
The commit is made on top of the commit that was compared (``parent_commit``), so a concurrent push
cannot be silently overwritten, and the tag is read back before it is reported.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import HubError, TokenError
from zoo.publish import hub
from zoo.publish.manifest import MANIFEST, Entry
from zoo.publish.sign import SIGNATURE
from zoo.recipe import Recipe
from zoo.records import BuildRecord
from zoo.workdir import Layout

log = logging.getLogger(__name__)
KEEP_REMOTE = {".gitattributes"}
RETRY = "re-run `zoo push` (it uploads only what is missing)"


@dataclass(frozen=True)
class PushResult:
    name: str
    repo_id: str
    revision: str
    status: str  # "pushed", "unchanged" or "dry-run"
    commit: str | None
    tag: str | None
    changed: tuple[str, ...] = field(default=())
    deleted: tuple[str, ...] = field(default=())
    unchanged: int = 0
    note: str = ""  # how a dry run compared (anonymously, or against nothing)
    compared: bool = True  # False for a dry run that could not reach the Hub: the whole local plan


def token() -> str:
    """The Hub token from the usual places, checked with the Hub; never printed."""
    from huggingface_hub import HfApi, get_token

    tok = get_token()
    if not tok:
        raise TokenError("no Hugging Face token found; fix: set HF_TOKEN or run `hf auth login` with a write token")
    import httpx

    hub.prepare()
    try:
        hub.call(HfApi().whoami, token=tok)
    except (OSError, RuntimeError, httpx.HTTPError) as e:
        if not hub.network_failure(e):
            raise
        raise hub.translate(e, "?/?", "checking the token", "check the network or HF_ENDPOINT", writing=True) from None
    return tok


def git_blob_oid(path: Path | None = None, data: bytes | None = None) -> str:
    """The git blob id the Hub reports for a non-LFS file."""
    if data is not None:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert path is not None
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _same(local: Path | bytes, sha: str, remote: Any) -> bool:
    size = len(local) if isinstance(local, bytes) else local.stat().st_size
    if remote.lfs is not None:
        return bool(remote.lfs.size == size and remote.lfs.sha256 == sha)
    oid = git_blob_oid(data=local) if isinstance(local, bytes) else git_blob_oid(local)
    return bool(remote.size == size and remote.blob_id == oid)


def remote_file(repo_id: str, revision: str, path: str) -> bytes | None:
    """One small file of the remote branch, or None when the repo, branch or file is not there."""
    import tempfile

    from huggingface_hub import get_token, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    hub.prepare()
    with tempfile.TemporaryDirectory(prefix="zoo-remote-") as tmp:
        try:
            got = hub.call(hf_hub_download, repo_id, path, revision=revision, local_dir=tmp, token=get_token() or False)
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
            return None
        return Path(got).read_bytes()


def _refs(api: Any, repo_id: str) -> tuple[dict[str, str], dict[str, str]]:
    refs = hub.call(api.list_repo_refs, repo_id)
    return {b.name: b.target_commit for b in refs.branches}, {t.name: t.target_commit for t in refs.tags}


def _tree(api: Any, repo_id: str, commit: str) -> dict[str, Any]:
    from huggingface_hub.hf_api import RepoFile

    files = {}
    for f in hub.call(lambda: list(api.list_repo_tree(repo_id, revision=commit, recursive=True))):
        hub.check_path(f.path, f"{repo_id}'s file list")  # deletions are made from these paths
        if isinstance(f, RepoFile):
            files[f.path] = f
    return files


def _conflict(repo_id: str, tag: str, existing: str, commit: str, what: str) -> HubError:
    return HubError(
        f"tag {tag} of {repo_id} already points to commit {existing}, not {what} {commit}; "
        f"fix: if that tag is stale, delete it (`hf repos tag delete {repo_id} {tag}`) and re-run `zoo push`"
    )


def publish(
    recipe: Recipe,
    layout: Layout,
    repo_id: str,
    private: bool | None,
    revision: str,
    dry_run: bool,
    files: dict[str, Path],
    entries: list[Entry],
    extras: dict[str, bytes],
    tag: str,
) -> PushResult:
    """Compare, commit and tag; a dry run only compares, anonymously when there is no token.

    ``extras``: files made here rather than read from the workdir - the manifest, and its signature."""
    import httpx
    from huggingface_hub import HfApi, get_token

    hub.prepare()
    tok = token() if not dry_run else get_token()
    api = HfApi(token=tok or False)
    action = "reading the remote"
    try:
        if dry_run and hub.offline_mode():
            return _local_plan(recipe.name, repo_id, revision, files, extras, tag, "HF_HUB_OFFLINE is set", False)
        return _publish(api, recipe, layout, repo_id, private, revision, dry_run, files, entries, extras, tag, bool(tok))
    except (OSError, RuntimeError, httpx.HTTPError) as e:
        if isinstance(e, RuntimeError) and not hub.network_failure(e):
            raise  # not a transfer failure: a bug, keep its traceback
        if dry_run and hub.never_connected(e):  # offline is a normal state for a plan: show all of it
            why = f"the Hub at {hub.endpoint()} could not be reached ({type(e).__name__})"
            return _local_plan(recipe.name, repo_id, revision, files, extras, tag, why, False)
        raise hub.translate(e, repo_id, f"pushing to {repo_id}" if not dry_run else action, RETRY, writing=True) from None


def _local_plan(
    name: str,
    repo_id: str,
    revision: str,
    files: dict[str, Path],
    extras: dict[str, bytes],
    tag: str,
    why: str,
    compared: bool,
) -> PushResult:
    """A dry run's plan without a remote to compare with: every file, as for a repo that does not exist.
    ``compared``: whether the Hub answered (the repo is absent) or was never reached (offline)."""
    everything = tuple(sorted([*files, *extras]))
    note = f"{why}: the local plan" + ("" if compared else f", not compared with {repo_id}")
    return PushResult(name, repo_id, revision, "dry-run", None, tag, everything, (), 0, note, compared=compared)


def _publish(
    api: Any,
    recipe: Recipe,
    layout: Layout,
    repo_id: str,
    private: bool | None,
    revision: str,
    dry_run: bool,
    files: dict[str, Path],
    entries: list[Entry],
    extras: dict[str, bytes],
    tag: str,
    has_token: bool,
) -> PushResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import RepositoryNotFoundError

    from zoo import __version__

    name = recipe.name
    total = len(entries) + len(extras)
    if not dry_run:
        hub.call(api.create_repo, repo_id, private=recipe.hub.private if private is None else private, exist_ok=True)
        if BuildRecord.require(layout).base_gating:
            # before any weight is uploaded: a gated base's derivative is never downloadable ungated.
            # "auto" grants access on accepting the mirrored prompt; the base's own review stays Meta's.
            hub.call(api.update_repo_settings, repo_id, gated="auto")
            log.info("%s: %s is gated like its base (the card carries the base's license prompt)", name, repo_id)
    try:
        branches, tags = _refs(api, repo_id)
    except RepositoryNotFoundError:
        if not dry_run:
            raise
        why = f"{repo_id} is not on the Hub (or private" + (")" if has_token else ", and no token was given)")
        return _local_plan(name, repo_id, revision, files, extras, tag, why, True)
    if revision not in branches and not dry_run:
        hub.call(api.create_branch, repo_id, branch=revision, exist_ok=True)
        branches, tags = _refs(api, repo_id)
    head = branches.get(revision) or branches.get("main")
    remote = _tree(api, repo_id, hub.check_commit(head, f"{repo_id}@{revision}")) if head else {}
    shas = {e.path: e.sha256 for e in entries}
    changed = [p for p in files if p not in remote or not _same(files[p], shas[p], remote[p])]
    for p, data in extras.items():
        if p not in remote or not _same(data, hashlib.sha256(data).hexdigest(), remote[p]):
            changed.append(p)
    keep = set(KEEP_REMOTE)
    if SIGNATURE not in extras and MANIFEST not in changed:
        keep.add(SIGNATURE)  # pushed unsigned, unchanged: the signature already there still signs these bytes
    deleted = tuple(sorted(p for p in remote if p not in files and p not in extras and p not in keep))
    unchanged = total - len(changed)
    existing = tags.get(tag)
    if existing is not None and (changed or deleted or existing != head):
        what = "a new commit on top of" if changed or deleted else f"{revision}'s head"
        raise _conflict(repo_id, tag, existing, str(head), what)
    if dry_run:
        note = "" if has_token else f"compared anonymously with the public {repo_id}"
        return PushResult(name, repo_id, revision, "dry-run", None, tag, tuple(changed), deleted, unchanged, note)
    commit = head
    if changed or deleted:
        ops: list[Any] = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=extras[p] if p in extras else str(files[p])) for p in changed
        ]
        ops += [CommitOperationDelete(path_in_repo=p, is_folder=False) for p in deleted]
        build = BuildRecord.require(layout)
        info = hub.call(
            api.create_commit,
            repo_id,
            operations=ops,
            commit_message=f"zoo {__version__}: {name}",
            commit_description=f"Recipe sha256 {build.recipe_sha256}; built by zoo {build.zoo_version}.",
            revision=revision,
            parent_commit=head,
        )
        commit = hub.check_commit(info.oid, f"the commit the Hub made in {repo_id}")
        log.info("%s: pushed %d file(s), deleted %d, to %s@%s (%s)", name, len(changed), len(deleted), repo_id, revision, commit)
    else:
        log.info("%s: %s@%s already holds these %d files; no commit made", name, repo_id, revision, total)
    if existing is None:
        from huggingface_hub.errors import HfHubHTTPError

        try:
            hub.call(api.create_tag, repo_id, tag=tag, revision=commit, tag_message=f"zoo {__version__}: {name}")
        except HfHubHTTPError as e:
            if hub.status_of(e) != 409:
                raise
        _, tags = _refs(api, repo_id)
        if tags.get(tag) != commit:
            raise _conflict(repo_id, tag, str(tags.get(tag)), str(commit), "the new commit")
    status = "pushed" if commit != head else "unchanged"
    return PushResult(name, repo_id, revision, status, commit, tag, tuple(changed), deleted, unchanged)
