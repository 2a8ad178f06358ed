"""LLaVA-Next's multimodal tasks through the real lmms-eval, on a tiny LLaVA-Next build, with the task
datasets served at the ids lmms-eval reads. lmms-eval is an optional extra; ``.ci/run`` installs it and
sets ZOO_REQUIRE_LMMS=1, so there this test fails rather than skips when it is missing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, write
from tests.hub_server import HubServer
from tests.hub_vision import add_vision_datasets

NAME = "tiny-llava-next-rtn-4bit"


def _lmms() -> None:
    try:
        import lmms_eval  # noqa: F401
    except ImportError:
        if os.environ.get("ZOO_REQUIRE_LMMS"):
            raise
        pytest.skip("lmms-eval is not installed (pip install 'zoo[vision]'; .ci/run installs it)")


def _zoo(server: HubServer, tmp: Path, catalog: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_"))}
    base.update(HF_ENDPOINT=server.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="0",
                HF_DATASETS_OFFLINE="0", ZOO_WORKDIR=str(tmp / "work"), **env)  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(catalog), *args],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_lmms_eval_tasks_run_on_a_llava_next_build(tmp_path: Path) -> None:
    _lmms()
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    try:
        tasks = add_vision_datasets(server)
        catalog = tmp_path / "recipes"
        shutil.copytree(RECIPES / "_base", catalog / "_base")
        text = (RECIPES / f"{NAME}.yaml").read_text()
        # MMBench is scored by a GPT judge: without a key zoo refuses before loading or measuring anything
        write(catalog, "judged", text.replace(f"name: {NAME}", "name: judged") + "eval: {tasks: [mmbench_en_dev]}\n")
        res = _zoo(server, tmp_path, catalog, "eval", "judged", "--limit", "2", HF_TOKEN=server.state.token)
        assert res.returncode == 2 and "OPENAI_API_KEY is not set" in res.stderr, res.stderr[-2000:]
        write(catalog, NAME, text + f"eval: {{tasks: [{', '.join(tasks)}]}}\n")
        assert _zoo(server, tmp_path, catalog, "build", NAME).returncode == 0
        res = _zoo(server, tmp_path, catalog, "eval", NAME, "--limit", "2")  # no token: lmms-eval's loaders need one
        assert res.returncode == 2 and "HF_TOKEN" in res.stderr, res.stderr[-2000:]
        res = _zoo(server, tmp_path, catalog, "eval", NAME, "--limit", "4", HF_TOKEN=server.state.token)
        requests = list(server.state.requests)
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr[-3000:]
    ev = json.loads((tmp_path / "work" / NAME / "eval.json").read_text())
    expected = {
        "ai2d/exact_match",
        "chartqa/relaxed_overall",
        "docvqa_val/anls",
        "mme/mme_cognition_score",
        "mme/mme_perception_score",
    }
    assert expected <= set(ev["metrics"]) and expected <= set(ev["baseline"]["metrics"])
    for task in tasks:  # each task's data came from the served repo at lmms-eval's id
        from zoo.tasks import TASKS

        assert any(f"/datasets/{TASKS[task].hub_id}/" in r for r in requests), task
    assert not (ROOT / "submissions").exists()  # lmms-eval's working files stay out of the checkout
