"""zoo plan (issue #30): each stage's memory from the base's config, the placement that fits, the refusal,
the release matrix's runners, and the host estimates against measured peaks of real tiny runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import RECIPES
from zoo.catalog import entries, load
from zoo.cli import cli
from zoo.plan import RUNNERS, Machine, placements, plan_recipe, runner_for, shape
from zoo.plan.estimate import OVERHEAD

BIG = Machine(0, 0, 10**12, 10**13)  # a CPU machine with room for anything tiny


def _zoo(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), *args])
    return res.exit_code, res.stdout, res.stderr


def test_shipped_configs_are_the_pinned_revisions_and_give_the_study_sizes() -> None:
    """The configs zoo ships are those of the revisions recipes/_base pins, and count the bases' parameters."""
    for base in ("llama3-8b", "llama3-70b", "llava-next-8b"):
        pinned = yaml.safe_load((RECIPES / "_base" / f"{base}.yaml").read_text())["base"]
        recipe = next(load(e.name, RECIPES) for e in entries(RECIPES, base, None))
        s = shape(recipe, RECIPES)
        assert "shipped with zoo" in s.source and pinned["revision"] in s.source
        assert s.params / 1e9 == pytest.approx(pinned["parameters"], rel=0.005), base
        assert s.hidden == pinned["hidden_size"] and s.intermediate == pinned["intermediate_size"]
    assert shape(load("llava-next-8b-gptq-4bit", RECIPES), RECIPES).vision_params > 3 * 10**8  # CLIP ViT-L/336 + projector


def test_every_70b_recipe_gets_a_multi_gpu_or_offload_plan_and_its_runner() -> None:
    names = [e.name for e in entries(RECIPES, "llama3-70b", None)]
    assert len(names) == 31
    rows = {r["recipe"]: r for r in json.loads(_zoo("matrix", "--family", "llama3-70b")[1])["include"]}
    for name in names:
        recipe = load(name, RECIPES)
        s = shape(recipe, RECIPES)
        runner = runner_for(recipe, s)
        assert runner is not None and rows[name]["runner"] == list(runner.labels)
        release = {p.stage: p for p in placements(recipe, s, runner.machine, release=True)}
        assert release["eval"].gpus >= 2 and release["baseline"].gpus >= 2, name  # 141 GB of weights over GPUs
        assert "gpu-80gb" in runner.labels
        # on one 80 GB GPU with 128 GB of RAM it still runs: weights streamed from host and disk
        one = {p.stage: p for p in placements(recipe, s, RUNNERS[2].machine)}
        assert all(p.fits for p in one.values()) and "--host-memory" in one["build"].flags
        assert one["eval"].offloaded and "offload" in one["eval"].strategy


def test_a_stage_that_fits_nowhere_is_refused_naming_the_smallest_machine() -> None:
    code, out, err = _zoo("plan", "llama3-70b-gptq-4bit", "--gpus", "1", "--gpu-memory", "24", "--host-memory", "64",
                          "--disk", "100")  # fmt: skip
    assert code == 13, (out, err)
    line = err.strip()
    assert "\n" not in line and "does not fit" in line and "fix: run it on gpu-80gb-x2" in line, line
    code, out, _ = _zoo("plan", "llama3-70b-gptq-4bit", "--gpus", "2", "--gpu-memory", "85.8", "--host-memory", "256",
                        "--disk", "2000", "--json")  # fmt: skip
    assert code == 0
    stages = {s["stage"]: s for s in json.loads(out)["plans"][0]["stages"]}
    assert stages["eval"]["strategy"].startswith("layers spread over 2 GPUs")


def test_the_vllm_backend_plans_tensor_parallelism() -> None:
    code, out, _ = _zoo("plan", "llama3-70b-rtn-4bit", "--runner", "gpu-80gb-x4", "--backend", "vllm", "--json")
    assert code == 0
    stages = {s["stage"]: s for s in json.loads(out)["plans"][0]["stages"]}
    assert stages["lm-eval (vLLM)"]["strategy"] in ("vLLM tensor parallel 2", "vLLM tensor parallel 4")


def test_builtin_and_local_bases_read_their_own_config(tmp_path: Path) -> None:
    assert shape(load("tiny-llama3-gptq-4bit", RECIPES), RECIPES).source == "built-in tiny-llama3"
    base = tmp_path / "base"
    base.mkdir()
    config = json.loads((Path(__file__).parents[1] / "zoo" / "tiny" / "tiny-llama3" / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 8}))
    (tmp_path / "local-rtn.yaml").write_text(
        f"name: local-rtn\nfamily: llama3\nmethod: rtn\nweights: {{bits: 4}}\nbase: {{path: {base}, parameters: 0.01, license: mit}}\n"
    )
    s = shape(load("local-rtn", tmp_path), tmp_path)
    assert s.layers == 8 and s.source == str(base / "config.json")


@pytest.mark.parametrize("stage,args", [("build", ["build", "tiny-llama3-gptq-4bit"]), ("eval", ["eval", "tiny-llama3-gptq-4bit"])])
def test_host_estimates_are_within_a_quarter_of_measured_peaks(stage: str, args: list[str], tmp_path: Path) -> None:
    """A tiny build and eval in their own process: the plan's host bytes (its measured fixed overhead of
    python + torch + transformers + the stage's harness, plus what it computes) against the peak RSS."""
    work = tmp_path / "work"
    env = {**os.environ, "ZOO_WORKDIR": str(work)}
    if stage == "eval":  # the eval needs its build, made in a process of its own first
        subprocess.run([sys.executable, "-m", "zoo", "-q", "build", args[1], "--device", "cpu"], env=env, check=True,
                       capture_output=True)  # fmt: skip
    probe = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); " \
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"  # fmt: skip
    res = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "zoo", "-q", *args, "--device", "cpu"], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    measured = int(res.stdout.strip()) * 1024
    p = plan_recipe(load(args[1], RECIPES), RECIPES, BIG)
    estimate = max(s.host for s in p.stages if s.stage in ({"build"} if stage == "build" else {"baseline", "eval"}))
    assert estimate >= OVERHEAD[stage]
    assert abs(estimate - measured) <= 0.25 * measured, (stage, estimate, measured)


@pytest.mark.parametrize(("gpus", "size"), [(0, 1), (1, 1), (2, 2), (3, 2), (8, 8), (16, 8)])
def test_vllm_evals_shard_over_the_visible_gpus(gpus: int, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from zoo.evaluation.harness import tensor_parallel

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert tensor_parallel() == size  # a power of two dividing LLaMA-3's 8 KV heads


def test_70b_builds_spread_over_the_runner_gpus_through_llm_compressor_or_say_why_not() -> None:
    """On the 70B runner (two GPUs) every llm-compressor recipe builds with a rank per GPU; every other method
    builds on one GPU and its plan says why, in the JSON and under the table."""
    from zoo.plan.estimate import LLMC, NATIVE_ONE_GPU

    spread = idle = 0
    for e in entries(RECIPES, "llama3-70b", None):
        recipe = load(e.name, RECIPES)
        s = shape(recipe, RECIPES)
        runner = runner_for(recipe, s)
        assert runner is not None and runner.machine.gpus >= 2
        build = placements(recipe, s, runner.machine, release=True)[0]
        if recipe.method in LLMC and recipe.format == "compressed-tensors":
            spread += 1
            assert build.gpus == runner.machine.gpus and "llm-compressor distributed" in build.strategy, e.name
            assert not build.note
        elif build.stage == "build":
            idle += 1
            assert build.gpus == 1 and build.note, e.name
        one = placements(recipe, s, RUNNERS[2].machine)[0]  # a one-GPU machine: nothing to say
        assert one.gpus == 1 and not one.note
    assert spread and idle
    code, out, _ = _zoo("plan", "llama3-70b-billm-1.1bit", "llama3-70b-gptq-4bit", "--runner", "gpu-80gb-x2")
    assert code == 0 and NATIVE_ONE_GPU in out and "llama3-70b-billm-1.1bit: build on one GPU" in out
    assert "2 ranks (one per GPU)" in out


def test_distributed_build_host_counts_each_rank_process_once() -> None:
    recipe = load("llama3-70b-gptq-4bit", RECIPES)
    s = shape(recipe, RECIPES)
    two = placements(recipe, s, RUNNERS[3].machine)[0]
    four = placements(recipe, s, RUNNERS[4].machine)[0]
    assert four.host - two.host == 2 * OVERHEAD["build"]  # the weights are shared; each rank is its own process
    assert four.per_gpu == two.per_gpu  # every rank holds one layer and its Hessians


@pytest.mark.parametrize("runner", [r.name for r in RUNNERS if r.machine.gpus])
def test_the_vllm_eval_starts_with_the_gpus_the_plan_gives(runner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from zoo.evaluation.harness import tensor_parallel

    machine = next(r.machine for r in RUNNERS if r.name == runner)
    recipe = load("llama3-8b-rtn-4bit", RECIPES)
    stage = placements(recipe, shape(recipe, RECIPES), machine, backend="vllm")[-1]
    assert stage.stage == "lm-eval (vLLM)" and stage.fits
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: machine.gpus)
    assert tensor_parallel() == stage.gpus == machine.gpus  # every GPU of these runners: 1, 2, 4, 8
