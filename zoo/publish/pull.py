"""``zoo pull``: what users run on repos they do not control. Fetch a release and prove every byte.

Everything from the remote is untrusted until checked. The revision resolves to one commit (the
newest release tag on main by default) and every request after that names the commit, so a moving
branch or tag cannot mix two releases. Every path in the tree listing and in ``zoo-release.json`` is
checked before use; only the files the manifest lists are downloaded (one ``hf_hub_download`` each,
never a pattern), into ``<target>/.zoo/staging``, each checked against the manifest's size and
sha256 before anything is moved into place. Any verification failure keeps nothing; a network
failure keeps the partial download, so a re-run resumes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import HubError, TokenError, UnknownNameError, VerifyError
from zoo.publish import hub
from zoo.publish.manifest import MANIFEST, MAX_BYTES, Entry, check_build_json, parse
from zoo.publish.target import Target, check_destinations, discard, inspect, move_in, open_staging
from zoo.workdir import check_disk, disk_full, is_disk_full, sha256_file

log = logging.getLogger(__name__)
RETRY = "check the network and re-run `zoo pull` (it resumes)"
_RELEASE_TAG = re.compile(r"release-[0-9a-f]{12}")


@dataclass(frozen=True)
class PullResult:
    repo_id: str
    revision: str  # the tag, branch or commit pulled
    commit: str
    local_dir: Path
    files: int
    total_bytes: int
    reused: int = 0  # files already in place from an earlier pull, re-verified, not downloaded
    provenance: dict[str, str] = field(default_factory=dict)  # what the weights' headers say (zoo.* keys)
    signed_by: str | None = None  # who signed the manifest, when --verify-with proved it


def repo_id_for(name: str, recipes: Path | None) -> str:
    """A repo id as given (owner/name, checked), or the one a catalog recipe publishes to."""
    if "/" in name:
        return hub.check_repo_id(name)
    from zoo.catalog import load, recipe_paths

    if recipes is None:
        raise UnknownNameError("recipe", name, [])
    try:
        return hub.check_repo_id(load(name, recipes).repo_id)
    except UnknownNameError as e:
        raise UnknownNameError("recipe or repo id", name, [p.stem for p in recipe_paths(recipes)]) from e


def resolve(api: Any, repo_id: str, revision: str | None) -> tuple[str, str]:
    """(what was pulled, its commit): ``revision`` as given, else the newest release tag on main."""
    if revision:
        info = hub.call(api.model_info, repo_id, revision=revision)
        return revision, hub.check_commit(info.sha, f"{repo_id}@{revision}")
    refs = hub.call(api.list_repo_refs, repo_id)
    tags = sorted(refs.tags, key=lambda t: t.name, reverse=True)
    releases = {t.target_commit: t.name for t in tags if _RELEASE_TAG.fullmatch(t.name)}
    main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
    if not releases:
        if main is None:
            raise HubError(f"{repo_id} has no main branch and no release tag; fix: pass --revision")
        log.warning("%s has no release tag; pulling main", repo_id)
        return "main", hub.check_commit(main, f"{repo_id}@main")
    if main in releases:
        return releases[main], hub.check_commit(main, f"{repo_id}@{releases[main]}")
    for c in hub.call(lambda: list(api.list_repo_commits(repo_id, revision="main"))):
        if c.commit_id in releases:
            return releases[c.commit_id], hub.check_commit(c.commit_id, f"{repo_id}@{releases[c.commit_id]}")
    raise HubError(f"none of {repo_id}'s release tags is on main; fix: pass --revision with the tag to pull")


def _tree(api: Any, repo_id: str, commit: str) -> dict[str, int]:
    """Path -> size of every file at ``commit``; every path checked, even those never downloaded."""
    from huggingface_hub.hf_api import RepoFile

    out = {}
    for f in hub.call(lambda: list(api.list_repo_tree(repo_id, revision=commit, recursive=True))):
        hub.check_path(f.path, f"{repo_id}'s file list")
        if isinstance(f, RepoFile):
            out[f.path] = int(f.size)
    return out


def pull(
    name: str,
    recipes: Path | None,
    revision: str | None = None,
    local_dir: Path | None = None,
    force: bool = False,
    verify_with: str | None = None,
    oidc_issuer: str | None = None,
) -> PullResult:
    """Download a release into a folder of its own and prove every file against its manifest; with
    ``verify_with``, first prove the manifest against its signature (who published it)."""
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id = repo_id_for(name, recipes)
    if verify_with is not None:
        from zoo.publish.sign import check_verify_with

        check_verify_with(verify_with)
    target = inspect(Path(local_dir or repo_id.split("/")[-1]), repo_id, force)
    hub.prepare()
    api = HfApi()
    keep_partial = False
    try:
        label, commit = resolve(api, repo_id, revision)
        tree = _tree(api, repo_id, commit)
        source = f"{repo_id}@{label}"
        if MANIFEST not in tree:
            raise VerifyError(
                f"{source} has no {MANIFEST}, so nothing in it can be verified; nothing was written; "
                "fix: pull a release made by `zoo push` (or ask the publisher to push again)"
            )
        check_small(tree, MANIFEST, source)
        staged = open_staging(target, commit)
        keep_partial = True
        manifest = Path(_download(api, repo_id, MANIFEST, commit, staged))
        keep_partial = False
        entries = parse(manifest.read_bytes(), source)
        signed_by = _check_signature(api, repo_id, commit, tree, staged, manifest, source, verify_with, oidc_issuer)
        for e in entries:
            if e.path not in tree:
                raise VerifyError(f"{source}: {MANIFEST} lists {e.path!r} but the repo has no such file; nothing was kept")
            if tree[e.path] != e.size:
                raise VerifyError(
                    f"{source}: {e.path!r} is {tree[e.path]} bytes in the repo, {MANIFEST} says {e.size}; nothing was kept"
                )
        check_destinations(target, entries, source)
        check_disk(staged, sum(e.size for e in entries if e.path not in target.ours) * 1.05, f"{source}'s files", "--local-dir")
        keep_partial = True
        fresh = _fetch(api, repo_id, commit, target, staged, entries, source)
        keep_partial = False
        check_build_json((staged if "build.json" in fresh else target.root).joinpath("build.json").read_bytes(), entries, source)
        move_in(target, staged, entries, fresh, {"repo_id": repo_id, "revision": label, "commit": commit})
    except VerifyError:
        discard(target, keep_partial=False)  # nothing unverified stays behind
        raise
    except RevisionNotFoundError:
        discard(target, keep_partial=False)
        raise HubError(f"revision {revision!r} not found in {repo_id}; fix: use a branch, tag or commit that exists") from None
    except GatedRepoError:  # a RepositoryNotFoundError too, but a token problem: exit 9
        discard(target, keep_partial=False)
        raise TokenError(
            f"{repo_id} is gated (HTTP 403): its terms must be accepted first; "
            "fix: accept them on the repo's Hub page, then set HF_TOKEN to a token of that account"
        ) from None
    except RepositoryNotFoundError:
        discard(target, keep_partial=False)
        raise HubError(f"{repo_id} not found on the Hub (or private); fix: check the name, or log in with access") from None
    except (LocalEntryNotFoundError, OSError, httpx.HTTPError) as e:
        # only a download cut short by the network is worth resuming; a refusal (401/403/404...) keeps nothing
        discard(target, keep_partial and hub.status_of(e) is None)
        if is_disk_full(e):
            raise disk_full(target.root, f"{repo_id}'s files", "--local-dir") from None
        raise hub.translate(e, repo_id, f"downloading {repo_id}", RETRY, writing=False) from None
    except BaseException:
        discard(target, keep_partial)
        raise
    total = sum(e.size for e in entries)
    log.info("%s: %d files (%.1f MB) verified against %s in %s", source, len(entries), total / 1e6, MANIFEST, target.root)
    from zoo.build.provenance import PREFIX, read_metadata

    weights = sorted(e.path for e in entries if e.path.endswith(".safetensors"))
    meta = read_metadata(target.root / weights[0]) if weights else {}
    provenance = {k.removeprefix(PREFIX): v for k, v in meta.items() if k.startswith(PREFIX)}
    return PullResult(repo_id, label, commit, target.root, len(entries), total, len(entries) - len(fresh), provenance, signed_by)


def _check_signature(
    api: Any,
    repo_id: str,
    commit: str,
    tree: dict[str, int],
    staged: Path,
    manifest: Path,
    source: str,
    verify_with: str | None,
    oidc_issuer: str | None,
) -> str | None:
    """Who signed the manifest (None when not asked); VerifyError before any other file is fetched."""
    from zoo.publish.sign import GITHUB_ISSUER, SIGNATURE, verify

    if verify_with is None:
        if SIGNATURE in tree:
            log.info("%s is signed; pass --verify-with KEY to prove who published it", source)
        return None
    if SIGNATURE not in tree:
        raise VerifyError(
            f"{source} has no {SIGNATURE}, so who published it cannot be proven; nothing was written; "
            "fix: ask the publisher to push with --sign-key, or pull without --verify-with"
        )
    check_small(tree, SIGNATURE, source)
    sig = Path(_download(api, repo_id, SIGNATURE, commit, staged))
    try:
        return verify(manifest, sig, verify_with, oidc_issuer or GITHUB_ISSUER)
    except VerifyError as e:
        raise VerifyError(
            f"{source}: {e}; nothing was written; fix: check --verify-with names the publisher's key, "
            "and report it to the publisher if it does"
        ) from None


def check_small(tree: dict[str, int], path: str, source: str) -> None:
    """zoo's own small files (manifest, signature) are read whole: refuse one larger than zoo writes."""
    if tree[path] > MAX_BYTES:
        raise VerifyError(f"{source}: {path} is {tree[path]} bytes, too large to be one; nothing was written")


def _download(api: Any, repo_id: str, path: str, commit: str, staged: Path) -> str:
    from huggingface_hub import hf_hub_download

    return hub.call(
        hf_hub_download, repo_id, path, revision=commit, local_dir=staged, etag_timeout=hub.timeout_s(), token=api.token
    )


def _fetch(api: Any, repo_id: str, commit: str, target: Target, staged: Path, entries: list[Entry], source: str) -> set[str]:
    """Download what is not already in place; verify each file. Returns the paths downloaded."""
    fresh, problems = set(), []
    for e in entries:
        have = target.ours.get(e.path)
        if have is not None and have.get("sha256") == e.sha256 and sha256_file(target.root / e.path) == e.sha256:
            continue  # from an earlier pull, unchanged and re-verified
        p = staged / e.path
        if p.is_symlink() or not (p.is_file() and p.stat().st_size == e.size and sha256_file(p) == e.sha256):
            p = Path(_download(api, repo_id, e.path, commit, staged))
        if p.stat().st_size != e.size:
            problems.append(f"corrupt: {e.path} is {p.stat().st_size} bytes, {MANIFEST} says {e.size}")
        elif sha256_file(p) != e.sha256:
            problems.append(f"corrupt: {e.path} sha256 differs from {MANIFEST}")
        fresh.add(e.path)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise VerifyError(
            f"{source}: {len(problems)} file(s) failed verification ({shown}); nothing was kept; "
            "fix: re-run `zoo pull`, and report it to the publisher if it persists"
        )
    return fresh
