"""Shared fixtures: an offline, isolated environment and the repo's own recipe catalog."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def pytest_configure(config: pytest.Config) -> None:
    """Offline before anything imports huggingface_hub or datasets (they read these at import)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    os.environ.pop("HF_TOKEN", None)
    os.environ.pop("ZOO_RECIPES", None)
    os.environ.pop("ZOO_WORKDIR", None)


@pytest.fixture(autouse=True, scope="session")
def _isolated(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo-cache")))
    mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf-home")))


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
