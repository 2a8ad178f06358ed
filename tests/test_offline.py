"""Offline is a normal state: push and its dry run with no Hub to reach, or with ``HF_HUB_OFFLINE`` set.

A real push says in one line why it cannot go on (never a traceback); a dry run shows the whole local
plan and says it could not compare. Each runs ``python -m zoo`` as a user does, against an endpoint
where nothing listens (a port opened and closed again) or in huggingface_hub's offline mode.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.hostile import NAME, error_line, release, work  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def dead_endpoint() -> str:
    """An http URL on 127.0.0.1 where the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def zoo(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    base.update(HF_HUB_DISABLE_XET="1", HF_HOME=str(cwd / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", ZOO_HUB_TIMEOUT="20")
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args],
        env=base,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_push_with_a_token_and_no_hub_is_one_line(work: Path, dead_endpoint: str) -> None:  # noqa: F811
    res = zoo(work, "push", NAME, "--workdir", str(work), HF_ENDPOINT=dead_endpoint, HF_TOKEN="hf_" + "x" * 34, HF_HUB_OFFLINE="0")
    line = error_line(res, 5)
    assert "could not connect to the Hub at " + dead_endpoint in line and "checking the token" in line, line
    assert "HF_ENDPOINT" in line and "--dry-run" in line, line


def test_hf_hub_offline_is_named_not_the_network(work: Path) -> None:  # noqa: F811
    res = zoo(work, "push", NAME, "--workdir", str(work), HF_TOKEN="hf_" + "x" * 34, HF_HUB_OFFLINE="1")
    line = error_line(res, 5)
    assert "HF_HUB_OFFLINE is set" in line and "unset HF_HUB_OFFLINE" in line, line
    assert "network" not in line, line


@pytest.mark.parametrize("offline", ["refused", "HF_HUB_OFFLINE"])
def test_a_dry_run_offline_prints_the_whole_local_plan(work: Path, dead_endpoint: str, offline: str) -> None:  # noqa: F811
    env = {"HF_ENDPOINT": dead_endpoint, "HF_HUB_OFFLINE": "1" if offline == "HF_HUB_OFFLINE" else "0"}
    res = zoo(work, "push", NAME, "--workdir", str(work), "--dry-run", **env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "would upload  model.safetensors" in res.stdout and "build.json" in res.stdout, res.stdout
    assert "not compared with" in res.stdout, res.stdout
    assert "re-run" not in res.stdout + res.stderr  # nothing failed: there is nothing to re-run
    assert ("HF_HUB_OFFLINE is set" if offline == "HF_HUB_OFFLINE" else "could not be reached") in res.stdout


def test_a_pull_offline_offers_no_dry_run_it_does_not_have(tmp_path: Path) -> None:
    res = zoo(tmp_path, "pull", "zoo-tiny/tiny-llama3-gptq-4bit", HF_HUB_OFFLINE="1")
    line = error_line(res, 5)
    assert "HF_HUB_OFFLINE is set" in line and "--dry-run" not in line, line


def test_a_stage_on_a_workdir_of_missing_folders_leaves_none_behind(tmp_path: Path) -> None:
    res = zoo(tmp_path, "card", NAME, "--workdir", str(tmp_path / "x" / "a" / "b"))
    line = error_line(res, 8)
    assert f"--workdir {tmp_path / 'x' / 'a' / 'b'}" in line, line  # the fix repeats where to build
    assert not (tmp_path / "x").exists()
