"""A release sees the whole zoo (#30): variant A is published to the test Hub from one workdir; a fresh workdir
that holds only variant B renders the site and B's sibling table with A's published numbers, read back with the
real huggingface_hub client on the light install (no torch). A hostile release of A is one unreadable row, and
an offline or unreachable Hub gives one warning and the workdir alone."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT
from tests.hub_server import HubServer
from tests.test_card import synthetic
from tests.test_install import zoo_without_torch
from tests.test_publish import zoo

A, B = "tiny-llama3-rtn-4bit", "tiny-llama3-rtn-8bit-pc"
REPO = f"zoo-tiny/{A}"
SIBLINGS = """
import json, sys
from pathlib import Path
from zoo.card.context import gather
from zoo.catalog import load, siblings
from zoo.records import BuildRecord, EvalRecord
from zoo.variant.hub import read_published
from zoo.workdir import Layout

root, work, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
catalog, layout = siblings(root), Layout(work, name)
published = read_published(catalog, work)
ctx = gather(load(name, root), catalog, work, "test", BuildRecord.read(layout), EvalRecord.read(layout), published)
print(json.dumps({r["name"]: {"ppl": r["ppl_text"], "url": r["url"]} for r in ctx["siblings"]}))
print("torch" in sys.modules, file=sys.stderr)
"""


def made(recipe_name: str, work: Path) -> Path:
    """``recipe_name`` built (a fixed 5-byte checkpoint), evaluated and carded in ``work``."""
    from zoo.card import render
    from zoo.catalog import load, siblings

    recipe = load(recipe_name, RECIPES)
    synthetic(recipe, work)
    render(recipe, siblings(RECIPES), work)
    return work


@pytest.fixture(scope="module")
def released(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A, pushed to the test Hub from a workdir of its own."""
    work = made(A, tmp_path_factory.mktemp("a-work"))
    res = zoo(hub, work, "push", A)
    assert res.returncode == 0, res.stderr[-2000:]
    return work


def env(hub: HubServer, home: Path, **more: str) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(home), "HF_HUB_OFFLINE": "0", **more}


def site(work: Path, out: Path, environ: dict[str, str], *flags: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    res = zoo_without_torch("site", "--workdir", str(work), "--out", str(out), *flags, env=environ)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads((out / "variants.json").read_text())}
    return res, rows


def test_a_one_recipe_workdir_renders_every_published_variant(hub: HubServer, released: Path, tmp_path: Path) -> None:
    work = made(B, tmp_path / "b-work")
    published_eval = json.loads((released / A / "eval.json").read_text())
    before = len(hub.state.requests)
    res, rows = site(work, tmp_path / "site", env(hub, tmp_path / "hf"))  # light install: torch made unimportable
    a, b = rows[A], rows[B]
    assert a["status"] == "published" and a["url"] == f"{hub.url}/{REPO}" and a["built"]
    assert a["ppl"] == published_eval["metrics"]["ppl/pydoc"] and a["ppl_recovery"] == published_eval["recovery"]["ppl/pydoc"]
    assert a["size_bytes"] == json.loads((released / A / "build.json").read_text())["total_bytes"]
    assert b["status"] == "evaluated" and b["url"] is None  # this workdir's, not pushed
    assert rows["tiny-llama3-gptq-4bit"]["status"] == "not built"
    page = (tmp_path / "site" / "tiny-llama3.html").read_text()
    assert f'href="{hub.url}/{REPO}"' in page and "1 published" in page
    # only records were fetched, never a weight; nothing cached outside the workdir, nothing left in it
    fetched = [r for r in hub.state.requests[before:] if "/resolve/" in r]
    assert fetched and all(r.split("?")[0].endswith(("zoo-release.json", "build.json", "eval.json")) for r in fetched), fetched
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.json"))
    assert sorted(p.name for p in work.iterdir()) == ["_site", B] or sorted(p.name for p in work.iterdir()) == [B]
    assert "Traceback" not in res.stderr

    # B's card: its sibling table lists A with A's published numbers and a link to its release
    sib = subprocess.run(
        [sys.executable, "-c", SIBLINGS, str(RECIPES), str(work), B], capture_output=True, text=True, cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("HF_")}, **env(hub, tmp_path / "hf")}, timeout=300,
    )  # fmt: skip
    assert sib.returncode == 0, sib.stderr[-2000:]
    table = json.loads(sib.stdout)
    assert table[A]["url"] == f"{hub.url}/{REPO}" and table[A]["ppl"].startswith(f"{published_eval['metrics']['ppl/pydoc']:.4g}")
    assert table[B]["url"] is None and sib.stderr.strip().splitlines()[-1] == "False"  # no torch imported


def test_a_newer_local_build_wins_and_local_only_reads_no_hub(hub: HubServer, released: Path, tmp_path: Path) -> None:
    from zoo.catalog import load
    from zoo.variant.hub import Published
    from zoo.variant.read import merge, read

    work = made(A, tmp_path / "work")  # the same recipe, built again here: build.json of another time
    data = json.loads((work / A / "build.json").read_text())
    (work / A / "build.json").write_text(json.dumps({**data, "created": "2027-01-01T00:00:00+00:00"}))
    before = len(hub.state.requests)
    _, rows = site(work, tmp_path / "local", env(hub, tmp_path / "hf"), "--local-only")
    assert hub.state.requests[before:] == [] and rows[A]["status"] == "built"  # eval.json measured the old build.json
    _, rows = site(work, tmp_path / "merged", env(hub, tmp_path / "hf"))
    assert rows[A]["status"] == "built" and rows[A]["url"] is None  # newer here: shown, the release's numbers are not

    recipe = load(A, RECIPES)
    local = read(recipe, work)
    remote = read(recipe, released)  # stands in for the release read back
    older = local.build.model_copy(update={"created": "2025-01-01T00:00:00+00:00"})  # type: ignore[union-attr]
    from dataclasses import replace

    assert merge(replace(local, build=older), Published({A: remote})) is remote
    assert merge(replace(local, build=older), Published({A: remote}), releasing=True).build is older
    assert merge(local, Published({A: remote})) is local
    assert merge(read(load(B, RECIPES), work), Published({A: remote})).status == "not built"
    assert merge(read(load(B, RECIPES), work), Published({}, {B: "bad"})).status == "unreadable"
    assert Published({A: remote}).fingerprint() != Published({A: local}).fingerprint() != Published().fingerprint()


def test_collections_note_every_published_variant_from_a_one_recipe_workdir(released: Path, tmp_path: Path) -> None:
    from zoo.catalog import load, siblings
    from zoo.publish.collections import note_for, pushed
    from zoo.variant.hub import Published
    from zoo.variant.read import read

    work = made(B, tmp_path / "b-work")  # B built here, never pushed; A published from elsewhere
    catalog = siblings(RECIPES)
    assert pushed(catalog, work) == {}
    remote = read(load(A, RECIPES), released)
    [(key, [(v, record)])] = pushed(catalog, work, published=Published({A: remote})).items()
    assert key == ("tiny-llama3", "zoo-tiny") and v is remote and record.repo_id == REPO
    assert note_for(v).startswith("RTN W4 g128; pydoc perplexity 6.5")


def test_a_hostile_published_eval_makes_that_variant_unreadable_in_one_line(
    hub: HubServer, released: Path, tmp_path: Path
) -> None:
    from zoo.publish.manifest import Entry, Identity, dump, tag_for

    repo = hub.state.repos[REPO]
    files = {p: e.data for p, e in repo.commits[repo.refs["main"]]["files"].items()}
    build = json.loads(files["build.json"])
    ev = json.loads(files["eval.json"])
    ev["metrics"]["ppl/pydoc"] = float("nan")  # Python's reader takes NaN; no renderer may
    files["eval.json"] = json.dumps(ev).encode()
    entries = [Entry(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in sorted(files.items()) if p != "zoo-release.json"]
    manifest = dump(Identity(A, REPO, build["recipe_sha256"], build["created"], ev["created"]), entries)
    files["zoo-release.json"] = manifest
    hub.state.craft(REPO, files, tag=tag_for(manifest))  # the newest release on main

    work = made(B, tmp_path / "b-work")
    res, rows = site(work, tmp_path / "site", env(hub, tmp_path / "hf"))
    lines = [x for x in res.stderr.splitlines() if A in x]
    assert len(lines) == 1 and "unreadable" in lines[0] and "eval.json is not a zoo record" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert rows[A]["status"] == "unreadable" and "eval.json" in rows[A]["problem"] and rows[B]["status"] == "evaluated"
    assert "unreadable" in (tmp_path / "site" / "tiny-llama3.html").read_text()

    # a release whose file does not match its manifest: unreadable too, the rest of the site unchanged
    hub.state.corrupt(REPO, "build.json")
    res, rows = site(work, tmp_path / "site2", env(hub, tmp_path / "hf"))
    assert rows[A]["status"] == "unreadable" and "sha256" in rows[A]["problem"] and rows[B]["status"] == "evaluated"


def test_offline_or_unreachable_gives_one_warning_and_the_workdir(hub: HubServer, tmp_path: Path) -> None:
    work = made(B, tmp_path / "work")
    before = len(hub.state.requests)
    res, rows = site(work, tmp_path / "offline", env(hub, tmp_path / "hf", HF_HUB_OFFLINE="1"))
    warnings = [x for x in res.stderr.splitlines() if "HF_HUB_OFFLINE" in x]
    assert len(warnings) == 1 and "--local-only" in warnings[0] and hub.state.requests[before:] == []
    assert rows[B]["status"] == "evaluated" and rows[A]["status"] == "not built"
    res, rows = site(work, tmp_path / "down", env(hub, tmp_path / "hf", HF_ENDPOINT="http://127.0.0.1:9", ZOO_HUB_TIMEOUT="5"))
    warnings = [x for x in res.stderr.splitlines() if "could not be reached" in x]
    assert len(warnings) == 1 and rows[B]["status"] == "evaluated", res.stderr
