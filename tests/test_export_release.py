"""A release carries its build's exact exports (#31): ``zoo export`` then ``zoo push`` puts ``gguf/`` in the same
repo, listed in the manifest, and ``zoo pull`` verifies it like every other file; an export of an earlier build
stays behind with one warning, and one changed since its proof stops the push.

The tiny RTN W4 g128 release of tests/hostile.py is exported and pushed as users run zoo (``python -m zoo`` in
a subprocess) against tests/hub_server.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests import hostile
from tests.conftest import RECIPES
from tests.hostile import MANIFEST, NAME, error_line, files_at, zoo
from tests.hub_server import HubServer

pytest.importorskip("gguf")
release, work, home = hostile.release, hostile.work, hostile.home  # the shared fixtures, used here
GGUF = f"gguf/{NAME}.gguf"


def exported(work: Path) -> Path:
    """The gguf export of the release in ``work``: its folder."""
    from zoo.catalog import load
    from zoo.export.run import export

    r = export(load(NAME, RECIPES), work, "gguf")
    assert r.status == "exported"
    return r.folder


def test_a_release_carries_its_exact_gguf_export_and_pull_verifies_it(hub: HubServer, work: Path, home: Path) -> None:
    repo = "zoo-export/carried"
    folder = exported(work)
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"would upload  {GGUF}" in res.stdout.splitlines() and "would upload  gguf/export.json" in res.stdout

    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    files = files_at(hub, repo)
    assert files[GGUF] == (folder / f"{NAME}.gguf").read_bytes()
    assert json.loads(files["gguf/export.json"])["build_sha256"] == hashlib.sha256(files["build.json"]).hexdigest()
    listed = {f["path"]: f["sha256"] for f in json.loads(files[MANIFEST])["files"]}
    assert listed[GGUF] == hashlib.sha256(files[GGUF]).hexdigest() and "gguf/export.json" in listed
    assert not any(p.startswith("export/") for p in files)  # published under gguf/, not the workdir's path

    res = zoo(hub, home, "pull", repo, "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    assert (home / "dl" / GGUF).read_bytes() == files[GGUF]

    hub.state.corrupt(repo, GGUF)  # pull checks the export against the manifest like the weights
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl2"), 10)
    assert f"corrupt: {GGUF} sha256 differs from {MANIFEST}" in line and not (home / "dl2").exists()


def test_a_stale_export_stays_behind_and_a_changed_one_stops_the_push(hub: HubServer, work: Path) -> None:
    from zoo.records import ExportRecord

    repo = "zoo-export/stale"
    folder = exported(work)
    record = ExportRecord.in_folder(folder)
    assert record is not None
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0 and GGUF in files_at(hub, repo), res.stderr

    record.model_copy(update={"build_sha256": "0" * 64}).write_into(folder)  # as after a rebuild: another build's
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    warned = [x for x in res.stderr.splitlines() if "gguf export" in x]
    assert len(warned) == 1 and "earlier build" in warned[0] and f"fix: zoo export {NAME} --to gguf" in warned[0]
    assert not any(p.startswith("gguf/") for p in files_at(hub, repo))  # the old build's file is not this release's

    record.write_into(folder)
    data = bytearray((folder / f"{NAME}.gguf").read_bytes())
    data[-1] ^= 0x01  # no longer the file the proof read back
    (folder / f"{NAME}.gguf").write_bytes(bytes(data))
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work)), 10)
    assert "gguf export changed since zoo export proved it" in line and f"zoo export {NAME} --to gguf --force" in line
    assert not any(p.startswith("gguf/") for p in files_at(hub, repo))
