"""zoo build on the tiny bases, through the same code a GPU build runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from tests.conftest import RECIPES, write
from zoo.catalog import load
from zoo.cli import cli
from zoo.quantize import build
from zoo.tiny import corpus
from zoo.tiny.bases import builtin_path
from zoo.workdir import sha256_file

LADDER = ["8bit-pc", "4bit", "3bit", "2bit"]


@pytest.fixture(scope="session")
def reference():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = builtin_path("tiny-llama3")
    tok = AutoTokenizer.from_pretrained(path)
    ids = torch.tensor(tok(corpus.heldout_text())["input_ids"][: 4 * 256]).view(4, 256)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():
        return ids, model(input_ids=ids).logits


def logit_error(model_dir: Path, reference) -> float:
    """Relative L2 distance of the quantized model's logits from the 16-bit model's."""
    from transformers import AutoModelForCausalLM

    ids, ref = reference
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        out = model(input_ids=ids).logits
    return float((out - ref).norm() / ref.norm())


@pytest.fixture(scope="session")
def quick_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the quick recipes are written."""
    import shutil

    root = tmp_path_factory.mktemp("quick") / "recipes"
    shutil.copytree(RECIPES / "_base", root / "_base")
    return root


@pytest.fixture(scope="session")
def quick(quick_catalog: Path, workdir: Path):
    """Catalog recipe NAME built (once per session) with 8 calibration windows instead of 32: the same
    method and scheme; llm-compressor's GPTQ spends most of a tiny build's minute in calibration passes."""
    root = quick_catalog

    def get(name: str) -> Path:
        quick = f"{name}-quick"
        text = (RECIPES / f"{name}.yaml").read_text().replace(f"name: {name}", f"name: {quick}")
        write(root, quick, text + "calibration: {samples: 8}\n")
        return build(load(quick, root), workdir, root, device="cpu").model_dir

    return get


@pytest.mark.parametrize(
    "method, full",
    [
        ("rtn", True),  # the default run's representative: data-free, seconds
        pytest.param("gptq", False, marks=pytest.mark.slow, id="gptq-quick"),  # test_gptq_beats_rtn_at_3_bits stays
        pytest.param("gptq", True, marks=pytest.mark.slow, id="gptq-catalog"),
    ],
)
def test_error_grows_as_bits_shrink(method: str, full: bool, built, quick, reference) -> None:
    get = built if full else quick  # RTN needs no calibration: the catalog recipes are quick already
    errors = [logit_error(get(f"tiny-llama3-{method}-{rung}"), reference) for rung in LADDER]
    assert errors == sorted(errors) and len(set(errors)) == 4, errors
    assert errors[0] < 0.02  # 8-bit per-channel: within 2% of the 16-bit logits
    assert errors[1] < 0.25  # 4-bit group 128: within 25%


def test_gptq_beats_rtn_at_3_bits(built, quick, reference) -> None:
    assert logit_error(quick("tiny-llama3-gptq-3bit"), reference) < logit_error(built("tiny-llama3-rtn-3bit"), reference)


# AWQ's grid search takes minutes on a CPU at the catalog recipe's settings: the catalog recipe runs in
# the slow suite, and the default suite builds the same recipe with a smaller calibration and grid.
QUICK_AWQ = "tiny-llama3-awq-4bit-quick"


def quick_awq(name: str, catalog: Path, workdir: Path) -> Path:
    """Catalog recipe ``name`` built with 8 calibration windows and a 5-point grid (seconds, not minutes)."""
    quick = f"{name}-quick"
    text = (RECIPES / f"{name}.yaml").read_text().replace(f"name: {name}", f"name: {quick}")
    write(catalog, quick, text + "calibration: {samples: 8}\nparams: {n_grid: 5}\n")
    return build(load(quick, catalog), workdir, catalog, device="cpu").model_dir


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("tiny-llama3-awq-4bit", marks=pytest.mark.slow),
        QUICK_AWQ,
        "tiny-llama3-smoothquant-w8a8",
        "tiny-llama3-gptq-4bit-pc",
    ],
)
def test_other_methods_build_reload_and_generate(name: str, built, reference, catalog: Path, workdir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = quick_awq("tiny-llama3-awq-4bit", catalog, workdir) if name == QUICK_AWQ else built(name)
    config = json.loads((folder / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    assert logit_error(folder, reference) < 0.25
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    x = tok("The import statement", return_tensors="pt")
    out = model.generate(**x, max_new_tokens=8, do_sample=False)
    assert out.shape[1] == x["input_ids"].shape[1] + 8


def test_checkpoint_is_packed_safetensors(built) -> None:
    folder = built("tiny-llama3-gptq-4bit")
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "model.layers.0.mlp.down_proj.weight_packed" in keys
    assert "lm_head.weight" in keys  # kept in 16-bit
    assert (folder / "tokenizer.json").exists() and (folder / "generation_config.json").exists()
    assert "GPTQModifier" in (folder / "recipe.yaml").read_text()  # llm-compressor re-runs it without zoo


def test_build_json_matches_files_and_rebuild_is_a_noop(built, workdir: Path) -> None:
    folder = built("tiny-llama3-gptq-4bit")
    record = json.loads((folder.parent / "build.json").read_text())
    listed = {f["path"]: f for f in record["files"]}
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(listed) == on_disk
    for path, f in listed.items():
        assert sha256_file(folder / path) == f["sha256"] and (folder / path).stat().st_size == f["size"]
    assert record["recipe"]["name"] == "tiny-llama3-gptq-4bit" and len(record["recipe_sha256"]) == 64
    assert record["calibration"]["samples"] == 32 and len(record["calibration"]["tokens_sha256"]) == 64
    assert record["versions"]["torch"] and record["versions"]["llmcompressor"]
    assert set(record["timings_s"]) >= {"load", "calibration", "quantize", "total"}
    assert record["peak_host_rss_bytes"] > 0
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    again = build(load("tiny-llama3-gptq-4bit", RECIPES), workdir, RECIPES, device="cpu")
    assert again.status == "skipped"
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_calibration_is_deterministic(quick, quick_catalog: Path, workdir: Path) -> None:
    folder = quick("tiny-llama3-gptq-3bit")  # shared with test_gptq_beats_rtn_at_3_bits; rebuilt apart below
    a = json.loads((folder.parent / "build.json").read_text())
    other = build(load("tiny-llama3-gptq-3bit-quick", quick_catalog), workdir / "again", quick_catalog, device="cpu")
    b = json.loads(other.build_json.read_text())
    assert a["calibration"] == b["calibration"]
    assert [f["sha256"] for f in a["files"]] == [f["sha256"] for f in b["files"]]


@pytest.mark.parametrize("method", ["rtn", "gptq", "awq-quick", pytest.param("awq", marks=pytest.mark.slow)])
def test_llava_next_quantizes_only_the_language_model(method: str, built, catalog: Path, workdir: Path) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if method == "awq-quick":
        folder = quick_awq("tiny-llava-next-awq-4bit", catalog, workdir)
    else:
        folder = built(f"tiny-llava-next-{method}-4bit")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("model.language_model.layers.0.") and k.endswith("weight_packed") for k in keys)
    assert not any(("vision_tower" in k or "multi_modal_projector" in k) and "packed" in k for k in keys)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    proc = AutoProcessor.from_pretrained(folder)
    x = proc(images=Image.new("RGB", (48, 32), (10, 200, 30)), text="<image>\nDescribe.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**x).logits
    assert torch.isfinite(logits).all()
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    vision = [m for n, m in linears.items() if "vision_tower" in n or "multi_modal_projector" in n]
    assert vision and all(getattr(m, "quantization_scheme", None) is None for m in vision)
    assert linears["model.language_model.layers.0.mlp.down_proj"].quantization_scheme is not None
    calibration = json.loads((folder.parent / "build.json").read_text())["calibration"]
    if method == "gptq":  # this recipe calibrates on image-text pairs
        assert calibration["images"]["source"] == "builtin" and calibration["images"]["count"] == 16
    elif calibration is not None:
        assert "images" not in calibration


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), *args])
    return res.exit_code, res.stderr


def test_build_errors_are_one_line(tmp_path: Path, catalog: Path) -> None:
    code, err = _cli("build", "tiny-llama3-gptq-4bti", "--workdir", str(tmp_path))
    assert code == 2 and "did you mean 'tiny-llama3-gptq-4bit'?" in err
    if not torch.cuda.is_available():
        code, err = _cli("build", "llama3-70b-gptq-3bit", "--workdir", str(tmp_path))
        assert code == 4 and "needs a GPU" in err and "--device cpu" in err
    write(
        catalog,
        "tiny-hub",
        "name: tiny-hub\nextends: _base/tiny-llama3\nmethod: rtn\nweights: {bits: 4}\n"
        "base: {builtin: null, repo_id: nobody/missing-model, revision: main}\n",
    )
    res = CliRunner().invoke(cli, ["--recipes", str(catalog), "build", "tiny-hub", "--workdir", str(tmp_path)])
    assert res.exit_code == 5 and "cannot reach the Hub for nobody/missing-model@main" in res.stderr
    assert not (tmp_path / "tiny-hub" / "model").exists() and not (tmp_path / "tiny-hub" / "build.json").exists()


def test_killed_build_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    env = {**os.environ, "ZOO_WORKDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "build", "tiny-llama3-gptq-4bit", "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "tiny-llama3-gptq-4bit"
    deadline = time.time() + 120
    while not list(folder.glob(".model.partial-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (folder / "model").exists() and not (folder / "build.json").exists()
    result = build(load("tiny-llama3-gptq-4bit", RECIPES), tmp_path, RECIPES, device="cpu")
    assert result.status == "built" and not list(folder.glob(".model.partial-*"))


@pytest.mark.parametrize("method,fmt,layer", [("gptq", "gptq", "TorchAtenLinear"), ("awq", "awq", "TorchAtenAwqLinear")])
def test_gptqmodel_formats(method: str, fmt: str, layer: str, catalog: Path, tmp_path: Path) -> None:
    pytest.importorskip("gptqmodel")
    from transformers import AutoModelForCausalLM

    name = f"tiny-{method}-{fmt}"
    write(catalog, name, f"name: {name}\nextends: _base/tiny-llama3\nmethod: {method}\nweights: {{bits: 4}}\nformat: {fmt}\n")
    result = build(load(name, catalog), tmp_path, catalog, device="cpu")
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == method
    model = AutoModelForCausalLM.from_pretrained(result.model_dir, device_map="cpu")
    assert type(model.model.layers[0].mlp.down_proj).__name__ == layer


def test_gptqmodel_format_without_the_extra(catalog: Path, tmp_path: Path) -> None:
    try:
        import gptqmodel  # noqa: F401

        pytest.skip("gptqmodel is installed")
    except ImportError:
        pass
    write(catalog, "tiny-g", "name: tiny-g\nextends: _base/tiny-llama3\nmethod: gptq\nweights: {bits: 4}\nformat: gptq\n")
    res = CliRunner().invoke(cli, ["--recipes", str(catalog), "build", "tiny-g", "--workdir", str(tmp_path)])
    assert res.exit_code == 6 and "pip install 'zoo[gptqmodel]'" in res.stderr
    assert not (tmp_path / "tiny-g" / "model").exists()


def test_provenance_stamp_keeps_every_tensor(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from zoo.quantize.provenance import read_metadata, stamp

    tensors = {"a": torch.arange(7, dtype=torch.int8), "b": torch.randn(3, 5).to(torch.bfloat16), "c": torch.ones(1)}
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    stamp(tmp_path, {"version": "0.1.0", "recipe": "x", "recipe_sha256": "ab" * 32})
    got = load_file(str(tmp_path / "model.safetensors"))
    assert set(got) == set(tensors) and all(torch.equal(got[k], tensors[k]) for k in tensors)
    assert read_metadata(tmp_path / "model.safetensors") == {
        "format": "pt", "zoo.version": "0.1.0", "zoo.recipe": "x", "zoo.recipe_sha256": "ab" * 32,
    }  # fmt: skip
    assert not list(tmp_path.glob(".*stamp"))
    assert read_metadata(tmp_path / "missing.safetensors") == {}


def test_release_carries_the_base_license_files(tmp_path: Path, catalog: Path) -> None:
    import shutil

    base = tmp_path / "base"
    shutil.copytree(builtin_path("tiny-llama3"), base)
    (base / "LICENSE").write_text("META LLAMA 3 COMMUNITY LICENSE AGREEMENT (stand-in)\n")
    (base / "USE_POLICY.md").write_text("# Meta Llama 3 Acceptable Use Policy (stand-in)\n")
    write(catalog, "tiny-licensed-rtn", "name: tiny-licensed-rtn\nfamily: llama3\nmethod: rtn\nweights: {bits: 4}\n"
          f"base: {{path: {base}, parameters: 0.0042, license: llama3}}\n")  # fmt: skip
    result = build(load("tiny-licensed-rtn", catalog), tmp_path / "work", catalog, device="cpu")
    for name in ("LICENSE", "USE_POLICY.md"):
        assert (result.model_dir / name).read_text() == (base / name).read_text()
    listed = {f["path"] for f in json.loads((result.model_dir.parent / "build.json").read_text())["files"]}
    assert {"LICENSE", "USE_POLICY.md"} <= listed  # hashed with the rest, so push publishes and pull verifies them
