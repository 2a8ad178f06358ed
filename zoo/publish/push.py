"""``zoo push``: publish a built, evaluated, carded variant to the Hub, safely re-runnable.

What goes up: the checkpoint files at the repo root, the card (README.md, plot, ``.eval_results``),
build.json and eval.json. Before uploading, the remote revision's tree is compared with the local
files (sizes, LFS sha256, git blob ids): identical content makes no commit. Changed files go up
through ``upload_folder`` (multi-commit and resumable with Xet, a single commit otherwise) in one
call whose message names the recipe and zoo version; files the variant no longer has are deleted in
that same commit. A tag marks the release. The token comes from huggingface_hub (HF_TOKEN or the
stored login) and is never logged or written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import HubError, NotReadyError, TokenError
from zoo.recipe import Recipe
from zoo.workdir import read_json, sha256_file

log = logging.getLogger(__name__)
KEEP_REMOTE = {".gitattributes"}





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


def token() -> str:
    """The Hub token from the usual places, checked with the Hub; never printed."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    tok = get_token()
    if not tok:
        raise TokenError("no Hugging Face token found; fix: set HF_TOKEN or run `hf auth login` with a write token")
    try:
        HfApi().whoami(token=tok)
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", "?")
        raise TokenError(
            f"the Hugging Face token was rejected (HTTP {status}); fix: create a write token and set HF_TOKEN"
        ) from None
    except OSError as e:
        raise HubError(
            f"cannot reach the Hub at {_endpoint()} ({type(e).__name__}); fix: check the network or HF_ENDPOINT"
        ) from None
    return tok


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def git_blob_oid(path: Path) -> str:
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish_files(recipe: Recipe, folder: Path) -> dict[str, Path]:
    """Repo path -> local file, for everything a release holds."""
    if not (folder / "build.json").exists():
        raise NotReadyError(f"{recipe.name} is not built in {folder.parent}; fix: run `zoo build {recipe.name}` first")
    card = folder / "card"
    if not (card / "README.md").exists():
        raise NotReadyError(f"{recipe.name} has no card; fix: run `zoo card {recipe.name}` first")
    files = {p.relative_to(folder / "model").as_posix(): p for p in sorted((folder / "model").rglob("*")) if p.is_file()}
    files.update({p.relative_to(card).as_posix(): p for p in sorted(card.rglob("*")) if p.is_file() and p.name != "card.json"})
    for name in ("build.json", "eval.json"):
        if (folder / name).exists():
            files[name] = folder / name
    return files


def _remote(api: Any, repo_id: str, revision: str) -> dict[str, Any]:
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return {f.path: f for f in api.list_repo_tree(repo_id, revision=revision, recursive=True) if hasattr(f, "size")}
    except (RevisionNotFoundError, RepositoryNotFoundError):  # nothing published there yet
        return {}


def _same(local: Path, remote: Any) -> bool:
    size = local.stat().st_size
    if remote.lfs is not None:
        return bool(remote.lfs.size == size and remote.lfs.sha256 == sha256_file(local))
    return bool(remote.size == size and remote.blob_id == git_blob_oid(local))


def push(
    recipe: Recipe,
    workdir: Path,
    repo_id: str | None = None,
    private: bool | None = None,
    revision: str = "main",
    dry_run: bool = False,
) -> PushResult:
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from zoo import __version__

    folder = workdir / recipe.name
    files = publish_files(recipe, folder)
    repo_id = repo_id or recipe.repo_id
    build_sha = sha256_file(folder / "build.json")
    tag = f"release-{build_sha[:12]}"
    tok = token()
    api = HfApi(token=tok)
    try:
        if not dry_run:
            api.create_repo(repo_id, private=recipe.hub.private if private is None else private, exist_ok=True)
            if revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
        remote = _remote(api, repo_id, revision)
        changed = tuple(p for p, f in files.items() if p not in remote or not _same(f, remote[p]))
        deleted = tuple(p for p in remote if p not in files and p not in KEEP_REMOTE)
        unchanged = len(files) - len(changed)
        if dry_run:
            return PushResult(recipe.name, repo_id, revision, "dry-run", None, tag, changed, deleted, unchanged)
        commit = None
        if changed or deleted:
            commit = _upload(api, recipe, folder, files, changed, deleted, repo_id, revision, __version__)
            log.info(
                "%s: pushed %d file(s), deleted %d, to %s@%s (%s)",
                recipe.name,
                len(changed),
                len(deleted),
                repo_id,
                revision,
                commit,
            )
        else:
            log.info("%s: %s@%s already holds these %d files; no commit made", recipe.name, repo_id, revision, len(files))
        api.create_tag(
            repo_id, tag=tag, revision=commit or revision, tag_message=f"zoo {__version__}: {recipe.name}", exist_ok=True
        )
    except HfHubHTTPError as e:
        raise HubError(
            f"the Hub refused the push to {repo_id}: {str(e).splitlines()[0]}; fix: check the repo id and token permissions"
        ) from None
    except (httpx.HTTPError, OSError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and not _transfer_failure(e):
            raise  # not a transfer failure: a bug, keep its traceback
        raise HubError(
            f"the connection to the Hub broke during the push to {repo_id} ({type(e).__name__}); "
            "fix: re-run `zoo push` (it uploads only what is missing)"
        ) from None
    status = "pushed" if commit else "unchanged"
    return PushResult(recipe.name, repo_id, revision, status, commit, tag, changed, deleted, unchanged)


def _transfer_failure(e: BaseException) -> bool:
    """Whether a wrapped error came from the network (huggingface_hub wraps failed LFS uploads)."""
    import httpx

    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, (httpx.HTTPError, OSError)) or type(cause).__name__.endswith("HTTPError"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _upload(
    api: Any,
    recipe: Recipe,
    folder: Path,
    files: dict[str, Path],
    changed: tuple[str, ...],
    deleted: tuple[str, ...],
    repo_id: str,
    revision: str,
    version: str,
) -> str:
    """Upload ``changed`` through a folder of hard links (copies across devices), deleting ``deleted``."""
    staging = folder / ".push"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for path in changed:
            dest = staging / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(files[path], dest)
            except OSError:
                shutil.copy2(files[path], dest)
        staging.mkdir(exist_ok=True)
        build = read_json(folder / "build.json") or {}
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(staging),
            revision=revision,
            commit_message=f"zoo {version}: {recipe.name}",
            commit_description=f"Recipe sha256 {build.get('recipe_sha256')}; built by zoo {build.get('zoo_version')}.",
            delete_patterns=list(deleted) or None,
        )
        return str(info.oid)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
