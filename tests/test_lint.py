"""The README's test command covers lint and types too: ruff, and mypy (strict on the typed core)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _tool(name: str) -> None:
    if shutil.which(name) is None and subprocess.run([sys.executable, "-m", name, "--version"], capture_output=True).returncode:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")


def test_ruff() -> None:
    _tool("ruff")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


def test_mypy_and_strict_core() -> None:
    """One run: pyproject's [[tool.mypy.overrides]] give the typed core every flag --strict sets."""
    _tool("mypy")
    res = subprocess.run([sys.executable, "-m", "mypy", "zoo"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]
