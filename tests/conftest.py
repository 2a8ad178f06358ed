"""Shared fixtures: an offline, isolated environment and the repo's own recipe catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


@pytest.fixture(autouse=True, scope="session")
def _offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo-cache")))
    mp.delenv("ZOO_RECIPES", raising=False)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """An empty catalog folder that has the shipped ``_base`` parents, for writing test recipes."""
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES / "_base", root / "_base")
    return root


def write(root: Path, name: str, text: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work directory per session, so each tiny recipe is built once."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def built(workdir: Path):
    """Build a tiny recipe (once per session) and return its model folder."""
    from zoo.build import build
    from zoo.catalog import load

    def get(name: str) -> Path:
        return build(load(name, RECIPES), workdir, RECIPES, device="cpu").model_dir

    return get
