"""Hub Collections: one per base model and Hub namespace, holding every variant pushed from this workdir,
each with a note (method, bits, quality kept), as publishers group their quantized checkpoints.

Idempotent: the collection is found by its title in the namespace (created only when absent), an item
is added only when missing and its note changed only when it differs, so a re-run makes no request
that writes. Only published repos are added: those with a ``push.json`` here and, given ``published``
(``zoo.variant.hub``), every release read back from the Hub, so a collection synced from a workdir holding
one variant still notes every other one; a collection never lists a repo that was not published. Notes
render the variant's ``Variant`` (``zoo.variant``, the workdir's or its release's by ``read.merge``), with
the words every renderer shares (``zoo.variant.text``): a quick run's numbers are marked as on the cards
and the site.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.publish import hub
from zoo.recipe import Recipe
from zoo.records import PushRecord
from zoo.untrusted import link, plain, redact_url
from zoo.variant.metrics import ZERO_SHOT_AVG
from zoo.variant.model import Variant
from zoo.variant.read import merge, read
from zoo.variant.text import fmt, pct, quick
from zoo.workdir import Layout

if TYPE_CHECKING:
    from zoo.variant.hub import Published

log = logging.getLogger(__name__)
TITLE_MAX, NOTE_MAX, DESCRIPTION_MAX = 60, 500, 150


@dataclass(frozen=True)
class CollectionResult:
    base: str
    namespace: str
    slug: str | None  # None in a dry run of a collection that does not exist yet
    url: str | None
    added: tuple[str, ...] = field(default=())
    updated: tuple[str, ...] = field(default=())
    unchanged: int = 0


def title_for(base: str) -> str:
    return f"{base.split('/')[-1]} quantized (zoo)"[:TITLE_MAX]


def note_for(v: Variant) -> str:
    """What a browser of the collection reads beside the repo: the method and how much quality it kept."""
    parts = [f"{v.method_title} {v.bits_label}"]
    key = v.primary.key if v.primary else None
    ppl, acc = v.value(key), v.value(ZERO_SHOT_AVG)
    if ppl is not None and v.primary is not None:
        kept = pct(v.recovery(key))
        recovery = f", {kept} of 16-bit" if kept else ""
        parts.append(f"{v.primary.name} perplexity {quick(fmt(ppl), v.limited)}{recovery}")
    if acc is not None:
        kept = pct(v.recovery(ZERO_SHOT_AVG))
        parts.append(f"zero-shot avg {quick(fmt(acc), v.limited)}" + (f" ({kept})" if kept else ""))
    if ppl is None and acc is None:
        parts.append("not evaluated yet")
    return "; ".join(parts)[:NOTE_MAX]


def pushed(
    catalog: list[Recipe], workdir: Path, names: set[str] | None = None, published: Published | None = None
) -> dict[tuple[str, str], list[tuple[Variant, PushRecord]]]:
    """(base, namespace) -> the published variants there (from this workdir, or read back from the Hub), each
    with the push record of its repo: the merged Variant's own, else this workdir's push.json."""
    groups: dict[tuple[str, str], list[tuple[Variant, PushRecord]]] = {}
    for r in catalog:
        if names is not None and r.name not in names:
            continue
        v = merge(read(r, workdir), published)
        remote = published.variants.get(r.name) if published is not None else None
        # a newer build here that is not pushed yet still belongs to the repo its release is in
        record = v.push or PushRecord.read(Layout(workdir, r.name)) or (remote.push if remote is not None else None)
        if record is not None:
            groups.setdefault((r.base_name, record.repo_id.split("/")[0]), []).append((v, record))
    return groups


def sync(
    catalog: list[Recipe],
    workdir: Path,
    names: set[str] | None = None,
    dry_run: bool = False,
    published: Published | None = None,
) -> list[CollectionResult]:
    """Bring each base's collection up to date with what was published (of ``names``, or everything): pushed
    from this workdir, and with ``published`` (``zoo.variant.hub.read_published``) every release on the Hub."""
    import httpx
    from huggingface_hub import HfApi, get_token

    from zoo.publish.commit import token

    groups = pushed(catalog, workdir, names, published)
    if not groups:
        return []
    hub.prepare()
    api = HfApi(token=(get_token() or False) if dry_run else token())
    out = []
    for (base, namespace), variants in sorted(groups.items()):
        try:
            out.append(_sync_one(api, base, namespace, variants, dry_run))
        except (OSError, RuntimeError, httpx.HTTPError) as e:
            if isinstance(e, RuntimeError) and not hub.network_failure(e):
                raise
            action, fix = f"updating the {base} collection", "re-run `zoo collection sync`"
            raise hub.translate(e, namespace, action, fix, writing=True) from None
    return out


def _sync_one(api: Any, base: str, namespace: str, variants: list[tuple[Variant, PushRecord]], dry_run: bool) -> CollectionResult:
    title = title_for(base)
    found = next((c for c in hub.call(lambda: list(api.list_collections(owner=namespace))) if c.title == title), None)
    wanted = {record.repo_id: note_for(v) for v, record in variants}
    if found is None and dry_run:
        return CollectionResult(base, namespace, None, None, tuple(sorted(wanted)))
    if found is None:
        description = f"Every variant of {base} that zoo published: method, bits, quality kept."[:DESCRIPTION_MAX]
        found = hub.call(api.create_collection, title, namespace=namespace, description=description, exists_ok=True)
        log.info("created the collection %s", plain(found.slug))
    collection = hub.call(api.get_collection, found.slug)
    have = {i.item_id: i for i in collection.items if i.item_type == "model"}
    added, updated = [], []
    for repo_id, note in sorted(wanted.items()):
        item = have.get(repo_id)
        if item is None:
            added.append(repo_id)
            if not dry_run:
                hub.call(api.add_collection_item, found.slug, repo_id, "model", note=note, exists_ok=True)
        elif (item.note or "") != note:
            updated.append(repo_id)
            if not dry_run:
                hub.call(api.update_collection_item, found.slug, item.item_object_id, note=note)
    unchanged = len(wanted) - len(added) - len(updated)
    slug = plain(found.slug)  # the server's word, printed: one inert line
    log.info("%s: %d added, %d notes updated, %d unchanged", slug, len(added), len(updated), unchanged)
    # huggingface_hub builds the URL from HF_ENDPOINT, userinfo and all: printed and stored without it
    url = link(redact_url(collection.url), hub.endpoint()) if collection.url else None
    return CollectionResult(base, namespace, slug, url, tuple(added), tuple(updated), unchanged)
