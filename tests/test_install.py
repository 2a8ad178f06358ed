"""The light install: list, show, validate, card, push and pull need no torch; build and eval say which
extra to install (exit 6). "No torch" is real here: the modules are made unimportable in the process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT
from tests.hostile import crafted
from tests.hub_server import HubServer

HEAVY = ("torch", "transformers", "datasets", "lm_eval", "llmcompressor", "compressed_tensors", "accelerate", "peft",
         "bitsandbytes", "safetensors", "tokenizers")  # fmt: skip
WITHOUT = "import sys\nfor m in {heavy!r}:\n    sys.modules[m] = None\nfrom zoo.cli import main\nsys.argv[0] = 'zoo'\nmain()\n"


def zoo_without_torch(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    code = WITHOUT.format(heavy=HEAVY)
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run(
        [sys.executable, "-c", code, "--recipes", str(RECIPES), *args],
        cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("args", [["list"], ["show", "llama3-8b-gptq-4bit"], ["validate", "--strict"], ["matrix"]])
def test_catalog_commands_run_without_torch(args: list[str]) -> None:
    res = zoo_without_torch(*args, env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-1500:]


def test_pull_runs_without_torch(tmp_path: Path) -> None:
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    try:
        server.state.craft("someone/light", crafted({"config.json": b"{}\n", "model.safetensors": b"\x00" * 64}))
        env = {"HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
        res = zoo_without_torch("pull", "someone/light", "--local-dir", str(tmp_path / "dl"), env=env)
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr[-1500:]
    assert "verified" in res.stdout and (tmp_path / "dl" / "model.safetensors").read_bytes() == b"\x00" * 64


@pytest.mark.parametrize("command,extra", [("build", "build"), ("eval", "eval"), ("release", "build"), ("rehearse", "build")])
def test_heavy_commands_name_their_extra(command: str, extra: str, tmp_path: Path) -> None:
    res = zoo_without_torch(command, "tiny-llama3-rtn-4bit", env={"ZOO_WORKDIR": str(tmp_path)})
    assert res.returncode == 6, res.stderr
    assert f"error: zoo {command} needs the {extra} extra" in res.stderr and f"pip install 'zoo[{extra}]'" in res.stderr
    assert not list(tmp_path.iterdir())  # nothing written
