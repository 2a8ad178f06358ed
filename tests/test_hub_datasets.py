"""zoo's dataset loaders through the real ``datasets`` client, against the Hub-protocol test server
serving the datasets at their real ids and in their real layouts (``tests/hub_data.py``)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hub_data import C4_VALIDATION, PTB_TEST, WIKI_TEST, add_datasets
from tests.hub_server import HubServer

LOAD = """
import json, sys
from zoo.data.text import load_text
t = load_text(sys.argv[1], sys.argv[2])
print(json.dumps({"text": t.text, "identity": t.identity}))
"""


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    add_datasets(server)
    yield server
    server.stop()


def run(hub: HubServer, tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0", HF_HUB_DISABLE_XET="1")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "name,split,rows,joiner",
    [("wikitext2", "test", WIKI_TEST, "\n\n"), ("ptb", "test", PTB_TEST, " "), ("c4", "validation", C4_VALIDATION, " ")],
)
def test_perplexity_texts_load_as_gptq_joins_them(hub: HubServer, tmp_path: Path, name: str, split: str, rows: list[str], joiner: str) -> None:
    res = run(hub, tmp_path, LOAD, name, split)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["text"] == joiner.join(rows)
    assert out["identity"]["dataset"] == name and len(out["identity"]["text_sha256"]) == 64


@pytest.mark.parametrize("name", ["wikitext2", "ptb", "c4"])
def test_calibration_splits_load(hub: HubServer, tmp_path: Path, name: str) -> None:
    res = run(hub, tmp_path, LOAD, name, "train")
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(json.loads(res.stdout.strip().splitlines()[-1])["text"]) > 100


def test_ptb_loading_script_is_refused_and_the_parquet_export_is_not(hub: HubServer, tmp_path: Path) -> None:
    """The regression: the old path (the repo's main branch, a loading script) fails under datasets >= 4."""
    old = "from datasets import load_dataset\nload_dataset('ptb-text-only/ptb_text_only', 'penn_treebank', split='test')\n"
    res = run(hub, tmp_path, old)
    assert res.returncode != 0 and "Dataset scripts are no longer supported" in res.stderr
    assert run(hub, tmp_path, LOAD, "ptb", "test").returncode == 0


def test_unreachable_dataset_is_one_line_with_the_fix(tmp_path: Path) -> None:
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")  # serves no dataset
    try:
        res = run(server, tmp_path, LOAD, "wikitext2", "test")
    finally:
        server.stop()
    assert res.returncode != 0 and "cannot load dataset 'wikitext2' (Salesforce/wikitext" in res.stderr
    assert "fix:" in res.stderr


def test_no_repo_files_or_cwd_writes(hub: HubServer, tmp_path: Path) -> None:
    before = sorted(p.name for p in ROOT.iterdir())
    assert run(hub, tmp_path, LOAD, "wikitext2", "test").returncode == 0
    assert sorted(p.name for p in ROOT.iterdir()) == before


HARNESS = """
import json, sys, torch, transformers
from zoo.evaluation.harness import evaluate
from zoo.tiny.bases import builtin_path
p = builtin_path("tiny-llama3")
model = transformers.AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32)
r = evaluate(model, transformers.AutoTokenizer.from_pretrained(p), sys.argv[1:], None, 2, 1)
print(json.dumps(r["metrics"]))
"""


def _harness(hub: HubServer, tmp_path: Path, *tasks: str) -> dict[str, float]:
    res = run(hub, tmp_path, HARNESS, *tasks)
    assert res.returncode == 0, res.stderr[-2000:]
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def test_lm_eval_reads_every_zero_shot_task_at_the_ids_zoo_names(hub: HubServer, tmp_path: Path) -> None:
    """lm-eval's own task definitions, over the datasets at the ids the task table (and so the card) names."""
    metrics = _harness(hub, tmp_path, "arc_easy", "arc_challenge", "piqa", "hellaswag", "winogrande")
    assert {"arc_easy/acc", "arc_challenge/acc", "piqa/acc", "hellaswag/acc_norm", "winogrande/acc", "zero_shot_avg/acc"} <= set(metrics)
    served = {line.split("/")[2] + "/" + line.split("/")[3] for line in hub.state.requests if line.startswith("GET /datasets/")}
    assert {"allenai/ai2_arc", "baber/piqa", "Rowan/hellaswag", "allenai/winogrande"} <= served


@pytest.mark.slow
def test_lm_eval_reads_mmlu_by_subject(hub: HubServer, tmp_path: Path) -> None:
    metrics = _harness(hub, tmp_path, "mmlu")
    assert {"mmlu/acc", "mmlu_stem/acc", "mmlu_humanities/acc", "mmlu_social_sciences/acc", "mmlu_other/acc"} <= set(metrics)
