"""Shared fixtures: an offline, isolated environment and the repo's own recipe catalog."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_server import HubServer

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
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # torch's default (a thread per core in every worker) oversubscribes the cores: 2.5x slower here
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


@pytest.fixture(autouse=True, scope="session")
def _isolated(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo-cache")))
    mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf-home")))
    mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))  # zoo pull's record of verified releases


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
    from zoo.catalog import load
    from zoo.quantize import build

    def get(name: str) -> Path:
        return build(load(name, RECIPES), workdir, RECIPES, device="cpu").model_dir

    return get


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    """A Hub-protocol server on 127.0.0.1 per test module (its repos outlive one test, not the module)."""
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    yield server
    server.stop()


PUBLISHED = "tiny-llama3-gptq-4bit"  # the variant the publishing tests push and pull


@pytest.fixture(scope="module")
def ready(built, workdir: Path) -> Path:  # noqa: ANN001
    """PUBLISHED built, evaluated and carded in the session workdir (each stage skips finished work)."""
    from zoo.card import render
    from zoo.catalog import load, recipe_paths
    from zoo.evaluation.run import evaluate
    from zoo.recipe import load_recipe

    built(PUBLISHED)
    evaluate(load(PUBLISHED, RECIPES), workdir, RECIPES, device="cpu", limit=8)
    render(load(PUBLISHED, RECIPES), [load_recipe(p) for p in recipe_paths(RECIPES)], workdir)
    return workdir
