"""``zoo push``, ``zoo pull``, ``zoo release``, ``zoo matrix``: the Hub and CI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from zoo.cli import (
    Choice,
    catalog_root,
    cli,
    device_option,
    emit,
    errors,
    from_env,
    gigabytes,
    host_memory_option,
    json_option,
    named,
    require,
    resolve_workdir,
    wait_option,
    workdir_option,
)
from zoo.cli.output import to_json
from zoo.cli.site import from_hub_option
from zoo.cli.table import table
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.publish.sign import Signer

sign_key_option = click.option(
    "--sign-key",
    type=click.Path(path_type=Path),
    envvar="ZOO_SIGNING_KEY_FILE",
    help="Sign the release manifest with this elliptic-curve private key (PEM; env ZOO_SIGNING_KEY_FILE).",
)
sigstore_option = click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore, using the CI job's OIDC identity.")


def signer_for(key: Path | None, sigstore: bool) -> Signer | None:
    """The signer, checked now (before anything is built or uploaded); a bad $ZOO_SIGNING_KEY_FILE is named."""
    from zoo.publish.sign import Signer

    with named(from_env(click.get_current_context(), "sign_key", "ZOO_SIGNING_KEY_FILE")):
        return Signer(key, sigstore) if key is not None or sigstore else None


@cli.command("push")
@click.argument("name")
@workdir_option
@click.option("--repo-id", help="Hub repo (default: the recipe's, {org}/{name}).")
@click.option("--org", envvar="ZOO_HUB_ORG", help="Hub org for the default repo id (env ZOO_HUB_ORG).")
@click.option("--private/--public", default=None, help="Visibility of a new repo (default: the recipe's).")
@click.option("--revision", default="main", show_default=True, help="Branch to commit to.")
@click.option("--dry-run", is_flag=True, help="List what would change; upload nothing. Needs no token (compares anonymously).")
@sign_key_option
@sigstore_option
@wait_option
@json_option
@click.pass_context
@errors
def push_cmd(
    ctx: click.Context,
    name: str,
    workdir: str | None,
    repo_id: str | None,
    org: str | None,
    private: bool | None,
    revision: str,
    dry_run: bool,
    sign_key: Path | None,
    sigstore: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Publish built recipe NAME (checkpoint, card, build.json, eval.json) to the Hub."""
    from zoo.catalog import load
    from zoo.publish.hub import check_repo_id
    from zoo.publish.push import push

    if repo_id is not None:
        check_repo_id(repo_id)  # before anything else, and before any network call
    recipe = load(name, catalog_root(ctx))
    with named(from_env(ctx, "org", "ZOO_HUB_ORG")):
        repo = repo_id or (check_repo_id(f"{org}/{recipe.name}") if org else None)
    r = push(recipe, resolve_workdir(workdir), repo, private, revision, dry_run, wait, signer_for(sign_key, sigstore))

    def text() -> str:
        if r.status == "unchanged":
            return f"{r.repo_id}@{r.revision}: already up to date ({r.unchanged} files); no commit made; tag {r.tag}"
        if r.status != "dry-run":
            return f"{r.repo_id}@{r.revision}: pushed {len(r.changed)} file(s) in commit {r.commit}; tag {r.tag}"
        note = f" ({r.note})" if r.note else ""
        return "\n".join([
            *(f"would upload  {p}" for p in r.changed),
            *(f"would delete  {p}" for p in r.deleted),
            f"{r.repo_id}@{r.revision}: {len(r.changed)} to upload, {len(r.deleted)} to delete, {r.unchanged} unchanged; "
            f"tag {r.tag}{note}",
        ])  # fmt: skip

    emit(r, text)


@cli.command("pull")
@click.argument("name")
@click.option("--revision", help="Branch, tag or commit (default: the newest release tag on main).")
@click.option("--local-dir", type=click.Path(path_type=Path), help="Where to put the files (default: ./<repo name>).")
@click.option(
    "--force", is_flag=True, help="Pull into a folder holding other files; only the files the release lists are overwritten."
)
@click.option(
    "--verify-with",
    metavar="KEY|sigstore:IDENTITY",
    help="Refuse unless the release manifest is signed by this public key (PEM) or Sigstore identity (exit 10).",
)
@click.option("--oidc-issuer", default=None, help="With sigstore:IDENTITY: the identity's OIDC issuer (default: GitHub Actions).")
@click.option(
    "--allow-older",
    is_flag=True,
    help="Accept a newest release that is older than one this user verified from the repo before (a warning, not exit 10).",
)
@click.option(
    "--unpack",
    is_flag=True,
    help="A packed release: also write its standard 16-bit checkpoint, to <local-dir>/unpacked, checked against the "
    "manifest's sha256 of it (exit 10, nothing kept, on a mismatch).",
)
@click.option(
    "--unpack-to",
    type=click.Path(path_type=Path),
    help="With a packed release: write the 16-bit checkpoint into this new or empty folder instead (implies --unpack).",
)
@json_option
@click.pass_context
@errors
def pull_cmd(
    ctx: click.Context,
    name: str,
    revision: str | None,
    local_dir: Path | None,
    force: bool,
    verify_with: str | None,
    oidc_issuer: str | None,
    allow_older: bool,
    unpack: bool,
    unpack_to: Path | None,
    as_json: bool,
) -> None:
    """Download NAME (a recipe name or owner/repo) and verify every file against the release manifest."""
    from zoo.catalog import recipes_dir
    from zoo.publish.pull import pull
    from zoo.untrusted import plain

    try:
        root: Path | None = recipes_dir(ctx.obj.get("recipes"))
    except ZooError:
        root = None  # users without a checkout pull by repo id
    r = pull(name, root, revision, local_dir, force, verify_with, oidc_issuer, allow_older, unpack, unpack_to)
    if as_json:
        click.echo(to_json(r))
        return
    # every string below that a repo supplied goes through plain(): it cannot draw on the terminal or
    # start a line of its own (such as a forged "signed by ...")
    click.echo(
        f"{r.repo_id}@{plain(r.revision)} (commit {r.commit}): {r.files} files ({r.total_bytes / 1e6:.1f} MB) verified in "
        f"{plain(r.local_dir)}"
    )
    if r.signed_by:
        click.echo(f"signed by {plain(r.signed_by)}: the release manifest's signature verifies")
    if r.release:
        w = r.release
        click.echo(
            f"release (from the manifest{', signed' if r.signed_by else ''}): recipe {plain(w.name)} "
            f"(sha256 {plain(w.recipe_sha256[:12])}) for {plain(w.repo_id)}, built {plain(w.built)}"
        )
    if r.unpacked is not None:
        click.echo(
            f"unpacked: the 16-bit checkpoint in {plain(r.unpacked)}; its tensors' sha256 is the manifest's"
            + (" (signed)" if r.signed_by else "")
        )
    elif r.packed:
        click.echo("packed checkpoint: load it after `import zoo.packed`, or pull with --unpack for the 16-bit one")
    if r.provenance:  # as the publisher wrote it: integrity is proven above, the publisher's identity is not
        p = {k: plain(v, 80) for k, v in r.provenance.items()}
        click.echo(
            f"provenance (from the weights' headers): zoo {p.get('version', '?')}, recipe {p.get('recipe', '?')} "
            f"(sha256 {p.get('recipe_sha256', '?')[:12]}), {p.get('method', '?')} on {p.get('base', '?')}"
            + (f"@{p['base_revision'][:12]}" if p.get("base_revision") else "")
        )


@cli.command("release")
@click.argument("names", nargs=-1, required=True)
@workdir_option
@device_option
@click.option("--limit", type=click.IntRange(min=1), help="Quick evaluation: at most N items per task (recorded in the card).")
@click.option("--dry-run", is_flag=True, help="Build, evaluate and card, but only list what push would upload (needs no token).")
@host_memory_option
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Eval items per forward pass.")
@click.option("--backend", type=Choice(["hf", "vllm"]), default="hf", show_default=True, help="lm-eval model backend.")
@sign_key_option
@sigstore_option
@from_hub_option
@wait_option
@json_option
@click.pass_context
@errors
def release_cmd(
    ctx: click.Context,
    names: tuple[str, ...],
    workdir: str | None,
    device: str,
    limit: int | None,
    dry_run: bool,
    host_memory: float | None,
    batch_size: int,
    backend: str,
    sign_key: Path | None,
    sigstore: bool,
    from_hub: bool | None,
    wait: bool,
    as_json: bool,
) -> None:
    """build -> eval -> bench -> card -> push for each NAME; finished stages are skipped; exit 1 if any failed."""
    require("release", "build", "eval")
    from zoo.pipeline.options import RunOptions
    from zoo.pipeline.stages import NAMES
    from zoo.publish.release import release

    signer = signer_for(sign_key, sigstore)
    root, work = catalog_root(ctx), resolve_workdir(workdir)
    from zoo.catalog import load

    for n in names:  # a typo is exit 2 with the nearest name, before any recipe runs (not one failed release)
        load(n, root)
    options = RunOptions(
        recipes=root, device=device, limit=limit, dry_run=dry_run, wait=wait, signer=signer,
        host_memory=gigabytes(host_memory),  # the build's cap (the eval of a packed checkpoint cannot spill to disk)
        backend=backend, batch_size=batch_size,
        share_baseline=not dry_run,  # a base measured here goes to the Hub store of baselines for every other machine
        from_hub=from_hub,  # the cards' sibling tables and the Collection list what is published, not only this run
    )  # fmt: skip
    outcomes = release(list(names), options, work)
    rows = [{"recipe": o.name, **{s: o.stages.get(s, "") for s in NAMES}, "error": o.error} for o in outcomes]
    emit(outcomes, lambda: table(rows))
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        raise ZooError(
            f"{len(failed)} of {len(outcomes)} release(s) failed: {', '.join(failed)}; "
            "fix: see each one's error (the table's error column, or result[].error with --json), then run the same command "
            "again (finished stages are skipped)"
        )


@cli.group("collection")
def collection_group() -> None:
    """Hub Collections: one per base model, holding its pushed variants."""


@collection_group.command("sync")
@click.argument("names", nargs=-1)
@workdir_option
@click.option("--dry-run", is_flag=True, help="Say what would be added or changed; write nothing.")
@from_hub_option
@json_option
@click.pass_context
@errors
def collection_sync_cmd(
    ctx: click.Context, names: tuple[str, ...], workdir: str | None, dry_run: bool, from_hub: bool | None, as_json: bool
) -> None:
    """Put every variant pushed from the workdir (or NAME...) into its base's collection, with a note each."""
    from zoo.catalog import load, siblings
    from zoo.pipeline.stages import published
    from zoo.publish.collections import sync

    root, work = catalog_root(ctx), resolve_workdir(workdir)
    chosen = {load(n, root).name for n in names} if names else None
    catalog = siblings(root)
    results = sync(catalog, work, chosen, dry_run, published=published(catalog, work, from_hub))
    verb, notes = ("would add", "to update") if dry_run else ("added", "updated")
    lines = [f"{r.url or f'{r.namespace} (new collection)'}: {verb} {len(r.added)}, notes {notes} {len(r.updated)}, "
             f"{r.unchanged} unchanged" for r in results]  # fmt: skip
    emit(results, "\n".join(lines) or "nothing pushed from this workdir yet; fix: zoo push NAME first")


@cli.command("matrix")
@click.argument("names", nargs=-1)
@click.option("--changed-since", help="Only recipes whose file, or a file they extend, changed since this git ref.")
@click.option("--family", help="llama3, llava-next, or a base such as llama3-70b.")
@click.option("--method", help="A method name, e.g. gptq.")
@click.option(
    "--json", "as_json", is_flag=True,
    help="The matrix is one JSON line either way (what $GITHUB_OUTPUT takes); with --json an error is one too.",
)  # fmt: skip
@click.pass_context
@errors
def matrix_cmd(
    ctx: click.Context, names: tuple[str, ...], changed_since: str | None, family: str | None, method: str | None, as_json: bool
) -> None:
    """The recipes as a GitHub Actions matrix (JSON), with runner labels by memory need."""
    from zoo.publish.matrix import matrix

    plan = matrix(catalog_root(ctx), changed_since, family, method, names)
    emit(plan, lambda: to_json(plan, line=True), line=True)
