"""``zoo push``: publish a built, evaluated, carded variant to the Hub, exactly and re-runnably.

What goes up: the checkpoint files at the repo root, the card (README.md, plot, ``.eval_results``),
build.json, eval.json, each exact export of this build (``zoo export``: ``gguf/``, ``mlx/`` with their
``export.json``; ``zoo.export.release``) and the release manifest ``zoo-release.json`` (every file's size and
sha256).
For a native method the checkpoint is its packed one (``packed/``, #32), with the hash of the 16-bit
checkpoint it decodes to in the manifest; the recipe's ``hub: {weights: fake}`` publishes ``model/`` instead.
Nothing stale goes up: the checkpoint is re-hashed against build.json, eval.json must have measured
that build, and the card must have been rendered from both. The remote branch's tree is compared
with the local files (sizes, LFS sha256, git blob ids): identical content makes no commit. Otherwise
one ``create_commit`` adds the changed files and deletes the ones the release no longer has, each
by its exact path (never a pattern, so any file name is taken literally), on top of the commit that
was compared. Each distinct content gets its own tag, ``release-<manifest sha256 prefix>``, which is
read back before it is reported. The token comes from huggingface_hub (HF_TOKEN or the stored
login) and is never logged or written; a dry run needs none.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import HubError, NotReadyError, UsageError, VerifyError
from zoo.publish import hub
from zoo.publish.commit import KEEP_REMOTE, RETRY, PushResult, git_blob_oid, token
from zoo.publish.manifest import MANIFEST, Entry, Identity, dump, tag_for
from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, CardRecord, EvalRecord, PushRecord
from zoo.workdir import Layout, sha256_file

if TYPE_CHECKING:
    from zoo.export.release import Carried
    from zoo.publish.sign import Signer

log = logging.getLogger(__name__)


def check_card(layout: Layout) -> None:
    """The card must have been rendered from the build.json and eval.json on disk now."""
    name = layout.name
    if not (layout.card / "README.md").exists():
        raise NotReadyError(f"{name} has no card; fix: zoo card {name}")
    record = CardRecord.read(layout)
    eval_sha = sha256_file(layout.eval_json) if layout.eval_json.exists() else None
    if record is None or record.build_sha256 != sha256_file(layout.build_json) or record.eval_sha256 != eval_sha:
        raise NotReadyError(f"{name}'s card was rendered from an earlier build or evaluation; fix: zoo card {name}")


def publish_files(layout: Layout, build: BuildRecord, exports: Sequence[Carried] = ()) -> dict[str, Path]:
    """Repo path -> local file, for everything a release holds (the manifest aside): of the checkpoint
    folder (model/, or packed/ for a packed release), only what build.json lists, so a stray file there is
    never published as the build; of each export (``zoo.export.release.carried``), only what its record lists."""
    files: dict[str, Path] = {}
    root, weights = build.published(layout)
    sources = [(root, root / f.path) for f in weights]
    sources += [(layout.card, p) for p in sorted(layout.card.rglob("*")) if p != layout.card_json]
    sources += [(layout.folder, layout.folder / n) for n in ("build.json", "eval.json", layout.samples.name)]
    if BenchRecord.current(layout) is not None:  # zoo bench's record of this very build: what the card's claims rest on
        sources.append((layout.folder, layout.bench_json))
    named = {p: rel for e in exports for rel, (p, _) in e.files.items()}  # published as <fmt>/<path>
    sources += [(layout.folder, p) for p in named]
    for root, p in sources:
        if p.is_symlink() or not p.is_file():
            continue
        rel = named.get(p) or p.relative_to(root).as_posix()
        try:
            hub.check_path(rel, f"{layout.folder}")
        except VerifyError:
            raise UsageError(f"cannot publish {p}: its name is not a plain relative path; fix: rename it") from None
        if rel in files or rel == MANIFEST:
            raise UsageError(f"{p} and {files.get(rel, rel)} would both be {rel!r} in the repo; fix: rename one")
        files[rel] = p
    return files


def release_entries(layout: Layout, build: BuildRecord, files: dict[str, Path], exports: Sequence[Carried] = ()) -> list[Entry]:
    """Size and sha256 of every published file; checkpoint hashes come from the just re-hashed build.json,
    an export's from its just checked record."""
    root, weights = build.published(layout)
    known = {f.path: f.sha256 for f in weights}
    checked = {rel: sha for e in exports for rel, (_, sha) in e.files.items()}
    out = []
    for rel, p in files.items():
        inside = p.parent == root or root in p.parents
        sha = known.get(rel) if inside else checked.get(rel)
        out.append(Entry(rel, p.stat().st_size, sha or sha256_file(p)))
    return out


def warn_unpacked(layout: Layout, build: BuildRecord) -> bool:
    """One warning line when a native method's build predates packed checkpoints (#32): its release is the 16-bit
    fake form, though the recipe asks for the packed one. Rebuilding is the only way to the packed form: of the
    native methods only DB-LLM's codes could be read back from its fake weights (the others' masks, salient
    columns, fp32 scales and QuIP's rescaling are not in them), so zoo does not try."""
    hub = build.recipe.get("hub")
    wants = (hub.get("weights", "packed") if isinstance(hub, dict) else "packed") == "packed"
    if build.method.get("format") != "fake" or build.packed_files or not wants:
        return False
    name = layout.name
    log.warning("%s was built before packed checkpoints existed: this release publishes the 16-bit fake form "
                "(%.1f MB); fix: zoo build %s --force", name, build.model_bytes / 1e6, name)  # fmt: skip
    return True


def unpacked_sha256(layout: Layout, build: BuildRecord) -> str | None:
    """What a packed release decodes to (its packed/config.json, just re-hashed against build.json); None
    when the release is not packed."""
    if not build.publishes_packed:
        return None
    try:
        sha = json.loads((layout.packed / "config.json").read_text())["quantization_config"]["unpacked_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        sha = None
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        name = layout.name
        raise NotReadyError(f"{name}'s packed/config.json records no unpacked_sha256; fix: zoo build {name} --force")
    log.info("%s: publishing the packed checkpoint (%.1f MB; the 16-bit one is %.1f MB, published with hub: {weights: fake})",
             layout.name, (build.packed_bytes or 0) / 1e6, build.model_bytes / 1e6)  # fmt: skip
    return sha


def push(
    recipe: Recipe,
    workdir: Path,
    repo_id: str | None = None,
    private: bool | None = None,
    revision: str = "main",
    dry_run: bool = False,
    wait: bool = False,
    signer: Signer | None = None,
) -> PushResult:
    """Publish ``recipe``'s release; holds the recipe's lock so no stage rewrites it meanwhile.
    With ``signer``, the manifest's signature (``zoo-release.sig``) goes up beside it."""
    from zoo.lock import stage_lock

    repo_id = hub.check_repo_id(repo_id or recipe.repo_id)
    hub.check_branch(revision)
    layout = Layout(workdir, recipe.name)
    if not layout.build_json.exists():
        raise NotReadyError(f"{recipe.name} is not built in {workdir}; fix: zoo build {recipe.name}")
    with stage_lock(layout, "push", wait):
        shutil.rmtree(layout.folder / ".push", ignore_errors=True)  # left by zoo versions that staged uploads
        build = BuildRecord.checked(layout, rehash=True)
        from zoo.records import check_recipe

        check_recipe(recipe, build, layout.folder)  # a release names the recipe: it must be the one built
        evaluation = EvalRecord.checked(layout)
        check_card(layout)
        warn_unpacked(layout, build)
        from zoo.export.release import carried

        exports = carried(layout)  # a stale export is left out with a warning; a changed one stops the push
        files = publish_files(layout, build, exports)
        entries = release_entries(layout, build, files, exports)
        # which release this is, inside the signed bytes: pull refuses it as another variant's or repo's
        built, evaluated = build.created, evaluation.created if evaluation else None
        identity = Identity(recipe.name, repo_id, build.recipe_sha256, built, evaluated)
        manifest = dump(identity, entries, unpacked_sha256(layout, build))
        from zoo.publish.commit import publish, remote_file

        extras = {MANIFEST: manifest}
        if signer is not None:
            from zoo.publish.sign import SIGNATURE, signature

            fetch = lambda: remote_file(repo_id, revision, SIGNATURE)  # noqa: E731
            extras[SIGNATURE] = signature(layout.signature, manifest, signer, fetch)
        result = publish(recipe, layout, repo_id, private, revision, dry_run, files, entries, extras, tag_for(manifest))
        if result.status != "dry-run" and result.commit:  # what the cards of siblings may link to
            PushRecord(
                repo_id=result.repo_id,
                revision=result.revision,
                commit=result.commit,
                tag=result.tag,
                build_sha256=sha256_file(layout.build_json),
                endpoint=hub.endpoint(),
                pushed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            ).write(layout)
        return result


__all__ = ["HubError", "PushResult", "push", "token", "publish_files", "git_blob_oid", "KEEP_REMOTE", "RETRY"]
