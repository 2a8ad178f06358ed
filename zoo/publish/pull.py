"""``zoo pull``: what users run on repos they do not control. Fetch a release and prove every byte.

Everything from the remote is untrusted until checked. The revision resolves to one commit (the
newest release tag on main by default) and every request after that names the commit, so a moving
branch or tag cannot mix two releases. Every path in the tree listing and in ``zoo-release.json`` is
checked before use; only the files the manifest lists are downloaded (one request each, never a
pattern, stopped at the manifest's size: ``fetch.py``), into ``<target>/.zoo/staging``, each checked
against the manifest's size and sha256 before anything is moved into place. The manifest must be
the release that was asked for (its recipe and repo, ``Identity``), and, signed, not older than one
verified before (``fresh.py``). Any verification failure keeps nothing; a network failure keeps the
partial download, so a re-run resumes. Every remote string pull logs goes through ``untrusted.plain``.

A packed release (a native method's ``zoo-packed`` checkpoint, manifest format 3) is kept packed; with
``unpack`` it is also decoded, before anything is moved into place, and the 16-bit tensors must hash to the
manifest's ``unpacked_sha256`` (signed with it), or nothing is kept (``target.py`` says where it goes).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import HubError, TokenError, UnknownNameError, VerifyError
from zoo.publish import fresh, hub
from zoo.publish.fetch import download
from zoo.publish.manifest import MANIFEST, MAX_BYTES, Entry, Identity, Manifest, check_build_json, parse
from zoo.publish.sign import GITHUB_ISSUER
from zoo.publish.target import Target, check_destinations, discard, hold, move_in, open_staging, unpack_destination
from zoo.untrusted import plain
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
    release: Identity | None = None  # which release the manifest says it is (format 2); signed with it
    packed: bool = False  # a native method's packed checkpoint (manifest format 3)
    unpacked: Path | None = None  # with --unpack: the 16-bit checkpoint, its tensors' sha256 verified


def asked_for(name: str, recipes: Path | None) -> tuple[str, str | None]:
    """(repo id, recipe name): a repo id as given (owner/name, checked), or a catalog recipe's and its repo."""
    if "/" in name:
        return hub.check_repo_id(name), None
    from zoo.catalog import load, recipe_paths

    if recipes is None:
        raise UnknownNameError("recipe", name, [])
    try:
        recipe = load(name, recipes)
    except UnknownNameError as e:
        raise UnknownNameError("recipe or repo id", name, [p.stem for p in recipe_paths(recipes)]) from e
    return hub.check_repo_id(recipe.repo_id), recipe.name


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
    allow_older: bool = False,
    unpack: bool = False,
    unpack_to: Path | None = None,
) -> PullResult:
    """Download a release into a folder of its own and prove every file against its manifest; with
    ``verify_with``, first prove the manifest against its signature (who published it). ``unpack`` (implied
    by ``unpack_to``): a packed release's 16-bit checkpoint too, in ``<folder>/unpacked`` or ``unpack_to``."""
    repo_id, recipe = asked_for(name, recipes)
    if verify_with is not None:
        from zoo.publish.sign import check_verify_with

        check_verify_with(verify_with)
    if unpack or unpack_to is not None:
        from zoo.publish.unpack import check_installed

        check_installed()
    hub.prepare()
    with hold(Path(local_dir or repo_id.split("/")[-1]), repo_id, force) as target:
        out = unpack_destination(target, unpack_to) if unpack or unpack_to is not None else None
        return _pull(target, recipe, revision, verify_with, oidc_issuer, allow_older, out, unpack_to is not None)


def _pull(
    target: Target,
    recipe: str | None,
    revision: str | None,
    verify_with: str | None,
    oidc_issuer: str | None,
    allow_older: bool,
    unpack_dest: Path | None = None,
    outside: bool = False,
) -> PullResult:
    """``pull`` inside the locked target: whatever fails, nothing unverified is kept."""
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id = target.repo_id
    api = HfApi()
    keep_partial = False
    try:
        label, commit = resolve(api, repo_id, revision)
        tree = _tree(api, repo_id, commit)
        source = f"{repo_id}@{plain(label)}"
        if MANIFEST not in tree:
            raise VerifyError(
                f"{source} has no {MANIFEST}, so nothing in it can be verified; nothing was written; "
                "fix: pull a release made by `zoo push` (or ask the publisher to push again)"
            )
        check_small(tree, MANIFEST, source)
        staged = open_staging(target, commit)
        keep_partial = True
        manifest_file = hub.call(download, repo_id, MANIFEST, commit, staged, tree[MANIFEST], api.token, source)
        keep_partial = False
        manifest = parse(manifest_file.read_bytes(), source)
        signed_by = _check_signature(api, repo_id, commit, tree, staged, manifest_file, source, verify_with, oidc_issuer)
        check_identity(manifest, repo_id, recipe, signed_by is not None, source)
        signer = fresh.signer_of(verify_with if signed_by else None, oidc_issuer or GITHUB_ISSUER)
        if manifest.identity is not None:
            fresh.check(hub.endpoint(), repo_id, signer, manifest.identity, commit, source, revision, allow_older)
        entries = manifest.entries
        if unpack_dest is not None:
            from zoo.publish.unpack import check_unpackable

            check_unpackable(manifest, source, outside)
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
        fresh_files = _fetch(api, repo_id, commit, target, staged, entries, source)
        keep_partial = False
        have = {e.path: (staged if e.path in fresh_files else target.root) / e.path for e in entries}
        evaluation = have["eval.json"].read_bytes() if "eval.json" in have else None
        check_build_json(have["build.json"].read_bytes(), manifest, source, evaluation)
        unpacked = None
        if manifest.unpacked_sha256 is not None:
            from zoo.publish.unpack import check_packed, decode

            check_packed(have, manifest, source)
            if unpack_dest is not None:
                unpacked = decode(target, have, manifest, source, unpack_dest if outside else None)
        mine = unpacked if unpacked is not None and not outside else None
        move_in(target, staged, entries, fresh_files, {"repo_id": repo_id, "revision": label, "commit": commit}, mine)
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
        # translate quotes the server only through untrusted.plain, and the CLI prints every line inert
        raise hub.translate(e, repo_id, f"downloading {repo_id}", RETRY, writing=False) from None
    except BaseException:
        discard(target, keep_partial)
        raise
    total = sum(e.size for e in entries)
    log.info("%s: %d files (%.1f MB) verified against %s in %s", source, len(entries), total / 1e6, MANIFEST, target.root)
    if manifest.identity is not None:
        tag = label if _RELEASE_TAG.fullmatch(label) else commit
        fresh.record(hub.endpoint(), repo_id, signer, manifest.identity, commit, tag)
    from zoo.quantize.provenance import PREFIX, read_metadata

    weights = sorted(e.path for e in entries if e.path.endswith(".safetensors") and "/" not in e.path)  # not an export's
    meta = read_metadata(target.root / weights[0]) if weights else {}
    provenance = {k.removeprefix(PREFIX): v for k, v in meta.items() if k.startswith(PREFIX)}
    reused = len(entries) - len(fresh_files)
    where = unpack_dest if unpacked is not None else None
    if where is not None:
        log.info("%s: the 16-bit checkpoint in %s matches %s's unpacked_sha256", source, where, MANIFEST)
    return PullResult(
        repo_id, label, commit, target.root, len(entries), total, reused, provenance, signed_by, manifest.identity,
        manifest.unpacked_sha256 is not None, where,
    )  # fmt: skip


def check_identity(manifest: Manifest, repo_id: str, recipe: str | None, signed: bool, source: str) -> None:
    """The manifest must be the release asked for: a signature over another variant's or another repo's
    release proves nothing about this one."""
    who = manifest.identity
    asked = f"recipe {recipe} ({repo_id})" if recipe else repo_id
    if who is not None and who.repo_id.lower() != repo_id.lower():
        found = f"{plain(who.repo_id)} (recipe {plain(who.name)})"
    elif recipe is not None and (who.name if who is not None else manifest.name) not in (None, recipe):
        found = f"recipe {plain(who.name if who is not None else manifest.name)}"
    elif who is None and signed:
        raise VerifyError(
            f"{source}: {MANIFEST} (format {manifest.format}) does not name the recipe and repo it was released for, "
            f"so its signature cannot prove it is {asked}'s release; nothing was written; "
            "fix: ask the publisher to push it again with a current zoo, or pull without --verify-with"
        )
    else:
        return
    raise VerifyError(
        f"{source}: {MANIFEST} is the release of {found}, not of {asked}; nothing was written; "
        "fix: pull the repo that release was made for, and report the mix-up to the publisher of this one"
    )


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
    from zoo.publish.sign import SIGNATURE, verify

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
    sig = hub.call(download, repo_id, SIGNATURE, commit, staged, tree[SIGNATURE], api.token, source)
    try:
        return verify(manifest, sig, verify_with, oidc_issuer or GITHUB_ISSUER)
    except VerifyError as e:
        raise VerifyError(
            f"{source}: {plain(str(e), 400)}; nothing was written; fix: check --verify-with names the publisher's key, "
            "and report it to the publisher if it does"
        ) from None


def check_small(tree: dict[str, int], path: str, source: str) -> None:
    """zoo's own small files (manifest, signature) are read whole: refuse one larger than zoo writes."""
    if tree[path] > MAX_BYTES:
        raise VerifyError(f"{source}: {path} is {tree[path]} bytes, too large to be one; nothing was written")


def _fetch(api: Any, repo_id: str, commit: str, target: Target, staged: Path, entries: list[Entry], source: str) -> set[str]:
    """Download what is not already in place; verify each file. Returns the paths downloaded."""
    fresh, problems = set(), []
    for e in entries:
        have = target.ours.get(e.path)
        if have is not None and have.get("sha256") == e.sha256 and sha256_file(target.root / e.path) == e.sha256:
            continue  # from an earlier pull, unchanged and re-verified
        p = staged / e.path
        if p.is_symlink() or not (p.is_file() and p.stat().st_size == e.size and sha256_file(p) == e.sha256):
            p = hub.call(download, repo_id, e.path, commit, staged, e.size, api.token, source)
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
