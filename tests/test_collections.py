"""Hub Collections with the real huggingface_hub client against the test Hub's collection endpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.hub_server import HubServer
from tests.test_publish import zoo

NAMES = ("tiny-llama3-rtn-4bit", "tiny-llama3-rtn-8bit-pc")


@pytest.fixture(scope="module")
def released(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two recipes released once (built, evaluated, benched, carded, pushed, collected) for the module."""
    work = tmp_path_factory.mktemp("released")
    res = zoo(hub, work, "release", *NAMES, "--limit", "4", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def test_release_puts_each_pushed_repo_in_its_family_collection(hub: HubServer, released: Path) -> None:
    tmp_path = released
    [collection] = hub.state.collections.values()
    assert collection["owner"] == "zoo-tiny" and collection["title"] == "tiny-llama3 quantized (zoo)"
    items = {i["id"]: i["note"]["text"] for i in collection["items"]}
    assert set(items) == {f"zoo-tiny/{n}" for n in NAMES}
    ev = json.loads((tmp_path / NAMES[0] / "eval.json").read_text())
    note = items[f"zoo-tiny/{NAMES[0]}"]
    assert note.startswith("RTN W4 g128; pydoc perplexity ") and f"{ev['recovery']['ppl/pydoc']:.1f}% of 16-bit" in note
    assert note.count("(quick run)") == 2, note  # both numbers marked, as in the cards and on the site
    writes = [r for r in hub.state.requests if r.startswith(("POST /api/collections", "PATCH /api/collections"))]
    # idempotent: a second sync (and a second release) changes nothing and writes nothing
    res = zoo(hub, tmp_path, "collection", "sync", "--json")
    assert res.returncode == 0, res.stderr
    [result] = json.loads(res.stdout)
    assert result["added"] == [] and result["updated"] == [] and result["unchanged"] == 2
    assert [r for r in hub.state.requests if r.startswith(("POST /api/collections", "PATCH /api/collections"))] == writes
    # a stale note (someone edited it on the Hub) is put back; a dry run only says so
    item = collection["items"][0]
    item["note"] = {"text": "edited by hand", "html": "edited by hand"}
    dry = zoo(hub, tmp_path, "collection", "sync", "--dry-run")
    assert dry.returncode == 0 and "notes to update 1" in dry.stdout and item["note"]["text"] == "edited by hand"
    res = zoo(hub, tmp_path, "collection", "sync")
    assert res.returncode == 0 and "notes updated 1" in res.stdout, res.stderr
    assert item["note"]["text"] != "edited by hand" and len(collection["items"]) == 2


def test_collection_sync_needs_a_push_and_a_token(hub: HubServer, released: Path, tmp_path: Path) -> None:
    res = zoo(hub, tmp_path, "collection", "sync", "--local-only")  # the Hub's releases aside (the test above made some)
    assert res.returncode == 0 and "nothing pushed from this workdir yet" in res.stdout
    res = zoo(hub, tmp_path, "collection", "sync", "tiny-llama3-rtn-4bti")
    assert res.returncode == 2 and "did you mean 'tiny-llama3-rtn-4bit'?" in res.stderr
    before = len(hub.state.requests)
    # every stage before push is done (a copy of the module's release, not yet pushed from here): the release
    # reaches push and stops there
    shutil.copytree(released / NAMES[0], tmp_path / NAMES[0], ignore=shutil.ignore_patterns(".zoo.lock", "push.json"))
    res = zoo(hub, tmp_path, "release", NAMES[0], "--limit", "4", "--device", "cpu", token=None)
    assert res.returncode == 1 and "no Hugging Face token found" in res.stderr + res.stdout
    assert not any("/api/collections" in r for r in hub.state.requests[before:])
