"""What the hostile-repo suites share: a tiny built release, a private copy of it, the user's folder, and
``zoo`` run as a user runs it against ``tests/hub_server.py``, with checks of its one ``error:`` line and of every
byte around the target (test_security*.py, test_pull_hostile.py, test_no_leaks.py, test_offline.py use it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.hub_server import HubServer

NAME = "tiny-llama3-rtn-4bit"
MANIFEST = "zoo-release.json"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built, carded tiny variant (no eval.json) in its own workdir; tests copy it before changing it."""
    from zoo.card import render
    from zoo.catalog import load, recipe_paths
    from zoo.quantize import build
    from zoo.recipe import load_recipe

    work = tmp_path_factory.mktemp("release")
    build(load(NAME, RECIPES), work, RECIPES, device="cpu")
    render(load(NAME, RECIPES), [load_recipe(p) for p in recipe_paths(RECIPES)], work)
    return work


@pytest.fixture
def work(release: Path, tmp_path: Path) -> Path:
    """A private copy of the release workdir."""
    dest = tmp_path / "work"
    shutil.copytree(release / NAME, dest / NAME, ignore=shutil.ignore_patterns(".zoo.lock"))
    return dest


def zoo(
    hub: HubServer, cwd: Path, *args: str, token: str | None = "default", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    base.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(Path(os.environ.get("HF_HOME", "/tmp")) / "security-hf-home"),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        ZOO_HUB_TIMEOUT="20",
    )
    if token is not None:
        base["HF_TOKEN"] = hub.state.token if token == "default" else token
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args],
        env=base,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def error_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    """The one ``error:`` line of a failed command, after checking its exit code and that no traceback leaked."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every path under ``root`` (but ``skip``) with its content hash, link target or kind."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def published(hub: HubServer, work: Path, repo: str) -> str:
    """Push the release in ``work`` to ``repo``; the commit it made."""
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    return hub.state.repos[repo].refs["main"]


def files_at(hub: HubServer, repo: str, rev: str = "main") -> dict[str, bytes]:
    r = hub.state.repos[repo]
    return {p: e.data for p, e in r.commits[r.refs.get(rev, rev)]["files"].items()}


def manifest_for(files: dict[str, bytes], extra: list[dict[str, object]] | None = None) -> bytes:
    entries = [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in sorted(files.items())]
    return json.dumps({"format": 1, "name": "crafted", "files": entries + (extra or [])}).encode()


def crafted(files: dict[str, bytes]) -> dict[str, bytes]:
    """A minimal self-consistent release: ``files`` plus a build.json listing them, plus its manifest."""
    build = json.dumps(
        {"files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()]}
    )
    out = {**files, "build.json": build.encode()}
    return {**out, MANIFEST: manifest_for(out)}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The user's folder: a victim file beside the pull target, and the target's path."""
    h = tmp_path / "home"
    h.mkdir()
    (h / "victim.txt").write_bytes(b"precious\n")
    (h / "project").mkdir()
    (h / "project" / "main.py").write_text("print('hi')\n")
    return h
