"""zoo eval: the study's perplexity protocol, the real lm-eval harness on shipped data, baseline,
recovery and the gate."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import RECIPES, write
from zoo.catalog import load
from zoo.cli import cli
from zoo.evaluation.harness import BUILTIN_DATA
from zoo.evaluation.perplexity import perplexity, windows
from zoo.evaluation.run import evaluate, recovery


class Bigram(torch.nn.Module):
    """A model whose next-token distribution is a fixed transition matrix: perplexity by hand."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.logp = probs.log()

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.logp[input_ids])


def test_perplexity_matches_hand_computation() -> None:
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    ids = [0, 1, 0, 2, 2, 1, 1, 0, 2, 1, 0]  # 11 tokens, windows of 4: two windows, 3 tokens dropped
    assert windows(ids, 4) == [[0, 1, 0, 2], [2, 1, 1, 0]]
    per_window = []
    for w in ([0, 1, 0, 2], [2, 1, 1, 0]):
        nll = [-math.log(probs[a][b]) for a, b in zip(w[:-1], w[1:], strict=True)]
        per_window.append(sum(nll) / len(nll))
    expected = math.exp(sum(per_window) * 4 / (2 * 4))
    got = perplexity(Bigram(probs), ids, seqlen=4)
    assert got.windows == 2 and got.tokens == 8
    assert got.value == pytest.approx(expected, rel=1e-6)
    assert perplexity(Bigram(torch.full((3, 3), 1 / 3)), ids, 4).value == pytest.approx(3.0)
    assert perplexity(Bigram(probs), ids, 4, max_windows=1).windows == 1
    assert perplexity(Bigram(probs), ids, 4, batch_size=2).value == pytest.approx(expected, rel=1e-6)
    assert perplexity(Bigram(probs), ids, 4, batch_size=5).value == pytest.approx(expected, rel=1e-6)


def test_tiny_base_knows_its_text_better_than_shuffled_tokens() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.data.calibration import token_ids
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    path = builtin_path("tiny-llama3")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ids = token_ids(corpus.heldout_text(), AutoTokenizer.from_pretrained(path))
    shuffled = [ids[i] for i in torch.randperm(len(ids), generator=torch.Generator().manual_seed(0)).tolist()]
    own = perplexity(model, ids, 256, max_windows=16).value
    assert own * 5 < perplexity(model, shuffled, 256, max_windows=16).value
    # batching windows (all one length: no padding) changes nothing but float rounding
    assert perplexity(model, ids, 256, max_windows=16, batch_size=8).value == pytest.approx(own, rel=1e-5)


def test_recovery_arithmetic() -> None:
    rec = recovery({"ppl/wikitext2": 8.0, "arc_easy/acc": 0.6, "x/acc": 0.5}, {"ppl/wikitext2": 6.0, "arc_easy/acc": 0.8})
    assert rec == {"ppl/wikitext2": pytest.approx(75.0), "arc_easy/acc": pytest.approx(75.0)}


def test_eval_writes_metrics_baseline_and_recovery(built, workdir: Path) -> None:
    built("tiny-llama3-gptq-4bit")
    result = evaluate(load("tiny-llama3-gptq-4bit", RECIPES), workdir, RECIPES, device="cpu", limit=8)
    data = json.loads(result.eval_json.read_text())
    m = data["metrics"]
    assert {"ppl/pydoc", "arc_easy/acc", "arc_easy/acc_norm", "hellaswag/acc_norm", "winogrande/acc", "mmlu/acc"} <= set(m)
    assert {"mmlu_stem/acc", "mmlu_humanities/acc", "zero_shot_avg/acc"} <= set(m)
    assert all(0.0 <= v <= 1.0 for k, v in m.items() if not k.startswith("ppl/"))
    assert data["limit"] == 8 and data["details"]["tasks"]["arc_easy"]["samples"] == 8
    assert data["details"]["tasks"]["mmlu"]["num_fewshot"] == 5
    assert data["details"]["perplexity"]["pydoc"]["windows"] == 8
    base = data["baseline"]["metrics"]
    assert data["recovery"]["ppl/pydoc"] == pytest.approx(100 * base["ppl/pydoc"] / m["ppl/pydoc"])
    assert m["ppl/pydoc"] < 2048 / 10 and data["recovery"]["ppl/pydoc"] > 90
    assert data["suite"]["versions"]["lm-eval"] and data["dtype"] == "float32" and data["device"] == "cpu"
    assert data["form"] == result.form == "model"  # a GPTQ release publishes model/ (only native methods pack)
    # lm-eval's per-item outputs, compressed beside eval.json, which records their hash
    import gzip

    from zoo.workdir import sha256_file

    samples = result.eval_json.parent / "eval-samples.jsonl.gz"
    assert data["samples_sha256"] == sha256_file(samples)
    rows = [json.loads(line) for line in gzip.decompress(samples.read_bytes()).splitlines()]
    per_task = {t: sum(1 for r in rows if r["task"] == t) for t in {r["task"] for r in rows}}
    assert per_task["arc_easy"] == 8 and all("resps" in r and "doc_id" in r for r in rows)
    assert not list(result.eval_json.parent.glob(".eval-samples*"))
    again = evaluate(load("tiny-llama3-gptq-4bit", RECIPES), workdir, RECIPES, device="cpu", limit=8)
    assert again.status == "skipped" and again.metrics == result.metrics


def test_two_bits_hurt_more_than_four(built, workdir: Path) -> None:
    ppl = {}
    for bits in (4, 2):
        name = f"tiny-llama3-rtn-{bits}bit"
        built(name)
        ppl[bits] = evaluate(load(name, RECIPES), workdir, RECIPES, device="cpu", limit=8).metrics["ppl/pydoc"]
    assert ppl[2] > ppl[4], ppl


def test_gate_fails_the_command_and_names_the_metric(built, workdir: Path, catalog: Path) -> None:
    built("tiny-llama3-rtn-2bit")
    write(catalog, "tiny-llama3-rtn-2bit", (RECIPES / "tiny-llama3-rtn-2bit.yaml").read_text() + "eval: {min_recovery: 95}\n")
    shutil.copytree(workdir / "tiny-llama3-rtn-2bit", catalog.parent / "work" / "tiny-llama3-rtn-2bit")
    args = ["--recipes", str(catalog), "eval", "tiny-llama3-rtn-2bit", "--workdir", str(catalog.parent / "work"), "--limit", "4"]
    # the recipe changed (a gate), so the build is of an older recipe
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 8 and "older recipe" in res.stderr
    record = json.loads((catalog.parent / "work" / "tiny-llama3-rtn-2bit" / "build.json").read_text())
    from zoo.records import recipe_sha256

    record["recipe_sha256"] = recipe_sha256(load("tiny-llama3-rtn-2bit", catalog))
    (catalog.parent / "work" / "tiny-llama3-rtn-2bit" / "build.json").write_text(json.dumps(record))
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 7, res.output
    [line] = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert "failed its recovery gate: ppl/pydoc" in line
    res = CliRunner().invoke(cli, [*args, "--allow-regression"])
    assert res.exit_code == 0 and "gate failed (allowed)" in res.stderr
    gate = json.loads((catalog.parent / "work" / "tiny-llama3-rtn-2bit" / "eval.json").read_text())["gate"]
    assert gate["passed"] is False and gate["failed"][0].startswith("ppl/pydoc")


def test_malformed_task_file_is_a_clear_error(built, workdir: Path, catalog: Path, tmp_path: Path) -> None:
    data = tmp_path / "tasks"
    shutil.copytree(BUILTIN_DATA, data)
    (data / "hellaswag.jsonl").write_text('{"ctx_a": "x", "ctx_b": "y", "endings": ["a"], "label": "0"}\n')
    write(
        catalog,
        "tiny-bad-tasks",
        f"name: tiny-bad-tasks\nextends: _base/tiny-llama3\nmethod: rtn\nweights: {{bits: 8, group_size: channel}}\n"
        f"eval: {{tasks: [hellaswag], task_data: {data}}}\n",
    )
    res = CliRunner().invoke(cli, ["--recipes", str(catalog), "build", "tiny-bad-tasks", "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 0
    res = CliRunner().invoke(cli, ["--recipes", str(catalog), "eval", "tiny-bad-tasks", "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 2
    assert "hellaswag.jsonl:1: missing field(s) activity_label" in res.stderr


def test_eval_before_build_says_what_to_run(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), "eval", "tiny-llama3-awq-3bit", "--workdir", str(tmp_path)])
    assert res.exit_code == 8 and "fix: zoo build tiny-llama3-awq-3bit" in res.stderr


def test_vllm_backend_without_vllm_names_the_fix(built, workdir: Path) -> None:
    pytest.importorskip("lm_eval")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    built("tiny-llama3-gptq-4bit")
    res = CliRunner().invoke(
        cli,
        [
            "--recipes",
            str(RECIPES),
            "eval",
            "tiny-llama3-gptq-4bit",
            "--workdir",
            str(workdir),
            "--limit",
            "2",
            "--backend",
            "vllm",
        ],
    )
    assert res.exit_code == 6 and "--backend vllm needs vLLM" in res.stderr
