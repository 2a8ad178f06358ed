"""The README's test command covers lint and types too: ruff, and mypy (strict on the typed core)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

STRICT = ["zoo/recipe", "zoo/build", "zoo/evaluation", "zoo/publish", "zoo/card", "zoo/lora", "zoo/families",
          "zoo/methods", "zoo/rehearse", "zoo/records.py", "zoo/tasks.py", "zoo/errors.py", "zoo/progress.py",
          "zoo/workdir.py", "zoo/lock.py", "zoo/catalog.py", "zoo/snapshot.py"]  # fmt: skip


def _tool(name: str) -> None:
    if shutil.which(name) is None and subprocess.run([sys.executable, "-m", name, "--version"], capture_output=True).returncode:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")


def test_ruff() -> None:
    _tool("ruff")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


def test_mypy_and_strict_core() -> None:
    _tool("mypy")
    for args in (["zoo"], ["--strict", *STRICT]):
        res = subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout[-3000:]
