"""QLoRA and IR-QLoRA: the NF4 quantizer, ICQ, IEC, training, resuming, and loading what a build wrote."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import RECIPES, write

from zoo.catalog import load as load_recipe
from zoo.lora import icq, iec, nf4
from zoo.lora.quantized import default_backend, quantize_base
from zoo.quantize import build
from zoo.tiny.bases import builtin_path

HAS_BNB = default_backend() == "bitsandbytes"
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed")
LORA = ["tiny-llama3-qlora-4bit", "tiny-llama3-irqlora-4bit"]


def _tiny_weight(name: str = "model.layers.1.mlp.down_proj.weight") -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(builtin_path("tiny-llama3") / "model.safetensors"))[name].float()


def _tiny_model() -> torch.nn.Module:
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(builtin_path("tiny-llama3"), dtype=torch.float32).eval()


@needs_bnb
def test_nf4_matches_bitsandbytes() -> None:
    import bitsandbytes.functional as F

    assert torch.allclose(nf4.codebook(), F.get_4bit_type("nf4", device="cpu"), atol=1e-6)
    assert torch.allclose(nf4.dynamic_map(), F.create_dynamic_map(signed=True), atol=1e-6)
    w = torch.randn(384, 512, generator=torch.Generator().manual_seed(1))
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    theirs = torch.stack([packed.flatten() // 16, packed.flatten() % 16], 1).flatten()
    ours = nf4.quantize(w, 64, double_quant=True)
    assert torch.equal(theirs, ours.codes.flatten().to(theirs.dtype))
    # bitsandbytes' C kernel rounds a few 8-bit scale codes the other way; the scales still agree closely
    assert ((F.dequantize_4bit(packed, state) - ours.dequantize()).abs() > 1e-3).float().mean() < 0.01


@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_round_trip_error_on_gaussian_matches_the_codebook(double_quant: bool) -> None:
    w = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    q = nf4.quantize(w, 64, double_quant)
    mse = float(((w - q.dequantize()) ** 2).mean())
    expected = nf4.expected_mse(64)
    assert abs(mse - expected) / expected < 0.02, (mse, expected)
    assert nf4.expected_mse(16) < expected < nf4.expected_mse(256)  # bigger blocks, larger maxima, coarser steps
    assert q.codes.max() == 15 and q.codes.min() == 0
    assert q.bits_per_weight == pytest.approx(4.127 if double_quant else 4.5, abs=1e-3)


@pytest.mark.parametrize("source", ["gaussian", "tiny-llama3"])
def test_icq_raises_per_block_code_entropy_over_nf4(source: str) -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randn(256, 768, generator=g) * 0.02 + 0.004 * torch.randn(256, 12, generator=g).repeat_interleave(64, 1)
    w = _tiny_weight() if source == "tiny-llama3" else w
    plain = nf4.block_entropy(nf4.quantize(w, 64).codes)
    calibrated = icq.quantize(w, 64, True, tau_range=0.1, steps=100)
    gained = nf4.block_entropy(calibrated.quantized.codes)
    assert gained.mean() > plain.mean() + 0.02, (float(plain.mean()), float(gained.mean()))
    assert (gained >= plain).float().mean() > 0.75
    again = icq.around(w, calibrated.tau, 64, True)  # what a loader rebuilds from icq.safetensors
    assert torch.equal(again.quantized.codes, calibrated.quantized.codes)
    assert calibrated.bits_per_weight > nf4.bits_per_weight(64, True)


def test_elastic_connection_matches_the_papers_formula_and_folds_exactly() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(_tiny_model(), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "down_proj"]))
    assert iec.attach(model) == 8
    for _, layer in iec.lora_layers(model):
        torch.nn.init.normal_(layer.lora_B["default"].lora.weight, std=0.02)
        layer.lora_A["default"].beta.data.fill_(0.3)
        layer.lora_B["default"].beta.data.fill_(-0.2)
    model.eval()
    # one branch against the formula written out: u = A x + bA * mean over r groups of x; y = s (B u + bB * u repeated)
    layer = model.base_model.model.model.layers[0].mlp.down_proj
    x = torch.randn(3, 768, generator=torch.Generator().manual_seed(7))
    a, b = layer.lora_A["default"], layer.lora_B["default"]
    u = x @ a.lora.weight.T + 0.3 * x.view(3, 8, 96).mean(-1)
    expected = layer.scaling["default"] * (u @ b.lora.weight.T - 0.2 * u.repeat_interleave(256 // 8, dim=1))
    with torch.no_grad():
        assert torch.allclose(layer(x) - layer.base_layer(x), expected, atol=1e-6)
    ids = torch.randint(0, 2000, (2, 32), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        elastic = model(input_ids=ids).logits
        betas = iec.fold(model)
        folded = model(input_ids=ids).logits
        for _, layer in iec.lora_layers(model):  # the same LoRA weights without the shortcuts' share
            layer.lora_A["default"].weight.data -= (
                0.3
                * torch.eye(8).repeat_interleave(layer.lora_A["default"].in_features // 8, 1)
                * 8
                / layer.lora_A["default"].in_features
            )
        unshortcut = model(input_ids=ids).logits
    assert torch.allclose(elastic, folded, atol=1e-5)
    assert not torch.allclose(elastic, unshortcut, atol=1e-3)  # the shortcuts do change the output
    assert len(betas) == 8 and all(b == pytest.approx([0.3, -0.2]) for b in betas.values())


@needs_bnb
def test_icq_search_picks_what_a_direct_bitsandbytes_search_picks() -> None:
    """A slow, literal search: each candidate offset, bitsandbytes' own NF4 codes, entropy, first maximum."""
    import bitsandbytes.functional as F

    w = _tiny_weight()[:4, :256]  # 16 blocks
    fast = icq.search_tau(w, 64, tau_range=0.1, steps=20)
    s = icq.scale_constant()
    for i, block in enumerate(w.reshape(-1, 64)):
        tau0 = block.median()
        spread = (block - tau0).abs().max()
        best, best_h = None, -1.0
        for f in torch.linspace(-0.1 * s, 0.1 * s, 41):
            tau = tau0 + f * spread
            packed, _ = F.quantize_4bit((block - tau).contiguous(), blocksize=64, quant_type="nf4")
            codes = torch.stack([packed.flatten() // 16, packed.flatten() % 16], 1).flatten()
            p = torch.bincount(codes.long(), minlength=16).float() / 64
            h = float(-(p[p > 0] * p[p > 0].log2()).sum())
            if h > best_h + 1e-6:
                best, best_h = tau, h
        assert float(fast[i]) == pytest.approx(float(best), abs=1e-6), i


@needs_bnb
@pytest.mark.parametrize("calibrate", [None, (0.1, 20)])
def test_bitsandbytes_and_torch_bases_compute_the_same_model(calibrate: tuple[float, int] | None) -> None:
    ids = torch.randint(0, 2000, (1, 48), generator=torch.Generator().manual_seed(4))
    logits = {}
    for backend in ("bitsandbytes", "torch"):
        model = _tiny_model()
        q = quantize_base(model, 64, True, "cpu", torch.float32, backend, calibrate=calibrate)  # type: ignore[arg-type]
        assert len(q.modules) == 28 and bool(q.taus) == (calibrate is not None)
        with torch.no_grad():
            logits[backend] = model(input_ids=ids).logits
    with torch.no_grad():
        full = _tiny_model()(input_ids=ids).logits
    gap = (logits["bitsandbytes"] - logits["torch"]).abs().mean()
    assert gap < 0.1 * (logits["torch"] - full).abs().mean()


@pytest.mark.parametrize("name", LORA)
def test_build_writes_a_peft_adapter_that_loads_and_generates(built, name: str) -> None:
    from zoo.lora.load import load

    model_dir = built(name)
    files = {p.name for p in model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "quantization.json", "tokenizer.json"} <= files
    assert ("icq.safetensors" in files) == (name == "tiny-llama3-irqlora-4bit") and "README.md" not in files
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "tiny-llama3" and adapter["r"] == 8
    info = json.loads((model_dir / "quantization.json").read_text())
    assert info["quantization"]["quant_type"] == "nf4" and info["training"]["steps"] == 30
    record = json.loads((model_dir.parent / "build.json").read_text())
    assert record["method"]["bits_per_weight"] == pytest.approx(4.254 if "irqlora" in name else 4.127, abs=1e-3)

    model = load(model_dir)
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    inputs = tok("### Instruction:\nWhat is a list?\n\n### Response: ", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8


@needs_bnb
def test_qlora_adapter_loads_on_the_stock_bitsandbytes_base(built) -> None:
    import transformers
    from peft import PeftModel

    from zoo.lora.load import load

    model_dir = built("tiny-llama3-qlora-4bit")
    info = json.loads((model_dir / "quantization.json").read_text())
    config = {**info["bitsandbytes_config"], "bnb_4bit_compute_dtype": torch.float32}
    base = transformers.AutoModelForCausalLM.from_pretrained(
        builtin_path("tiny-llama3"), quantization_config=transformers.BitsAndBytesConfig(**config), dtype=torch.float32
    )
    stock = PeftModel.from_pretrained(base, model_dir).eval()
    ids = torch.randint(0, 2000, (1, 40), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(stock(input_ids=ids).logits, load(model_dir)(input_ids=ids).logits, atol=1e-4)


def _instruction_loss(model: torch.nn.Module, model_dir: Path) -> float:
    import transformers

    from zoo.data import instructions
    from zoo.lora.train import collate

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    examples = instructions.tokenize(instructions.load("builtin", RECIPES).rows, tok, 128)
    with torch.no_grad():
        losses = [
            float(model(**collate(examples[i : i + 16], tok.eos_token_id, "cpu")).loss) for i in range(0, len(examples), 16)
        ]
    return sum(losses) / len(losses)


@pytest.mark.parametrize("name", LORA)
def test_training_lowers_the_loss_on_the_instruction_data(built, name: str) -> None:
    from zoo.lora.load import load

    model_dir = built(name)
    model = load(model_dir)
    trained = _instruction_loss(model, model_dir)
    with model.disable_adapter():
        untrained = _instruction_loss(model, model_dir)
    assert trained < untrained - 0.05, (untrained, trained)


def test_interrupted_training_resumes_from_the_last_checkpoint(
    tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from safetensors.torch import load_file

    import zoo.progress

    text = (
        "name: tiny-resume\nextends: _base/tiny-llama3\nmethod: irqlora\nweights: {bits: 4, group_size: 64}\n"
        "params: {dataset: builtin, rank: 8, steps: 12, batch_size: 4, max_seq_len: 96, save_every: 5, tau_steps: 10}\n"
    )
    write(catalog, "tiny-resume", text)
    recipe = load_recipe("tiny-resume", catalog)
    real = zoo.progress.reporter

    def crashing(desc: str):
        tick = real(desc)

        def step(done: int, total: int) -> None:
            tick(done, total)
            if desc.endswith("train") and done == 8:
                raise KeyboardInterrupt

        return step

    monkeypatch.setattr(zoo.progress, "reporter", crashing)
    with pytest.raises(KeyboardInterrupt):
        build(recipe, tmp_path / "a", catalog, device="cpu")
    folder = tmp_path / "a" / "tiny-resume"
    assert [p.name for p in (folder / "train").iterdir()] == ["checkpoint-0000005.pt"]
    assert not (folder / "model").exists() and not (folder / "build.json").exists()

    monkeypatch.setattr(zoo.progress, "reporter", real)
    with caplog.at_level(logging.INFO, logger="zoo.lora.train"):
        resumed = build(recipe, tmp_path / "a", catalog, device="cpu")
    assert "resuming from step 5" in caplog.text
    record = json.loads(resumed.build_json.read_text())
    assert record["method"]["resumed_from_step"] == 5 and not (folder / "train").exists()

    straight = build(recipe, tmp_path / "b", catalog, device="cpu")
    assert json.loads(straight.build_json.read_text())["method"]["resumed_from_step"] == 0
    a = load_file(str(resumed.model_dir / "adapter_model.safetensors"))
    b = load_file(str(straight.model_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    curve = lambda r: json.loads((r.model_dir / "quantization.json").read_text())["training"]["loss_curve"]  # noqa: E731
    assert curve(resumed) == curve(straight)


def test_merged_checkpoint_matches_the_adapter_on_its_quantized_base(tmp_path: Path, catalog: Path) -> None:
    import transformers

    from zoo.lora.load import load

    write(
        catalog,
        "tiny-merge",
        "name: tiny-merge\nextends: _base/tiny-llama3\nmethod: irqlora\nweights: {bits: 4, group_size: 64}\n"
        "params: {dataset: builtin, rank: 8, steps: 4, batch_size: 2, max_seq_len: 64, learning_rate: 0.01, merge: true, "
        "tau_steps: 10}\n",
    )
    res = build(load_recipe("tiny-merge", catalog), tmp_path, catalog, device="cpu")
    merged = transformers.AutoModelForCausalLM.from_pretrained(res.model_dir / "merged", dtype=torch.float32).eval()
    ids = torch.randint(0, 2000, (1, 40), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ours, adapter, full = (
            merged(input_ids=ids).logits,
            load(res.model_dir)(input_ids=ids).logits,
            _tiny_model()(input_ids=ids).logits,
        )
    # merged/ is stored in the base's own dtype (bf16): its rounding must be far below what NF4 changed
    assert (ours - adapter).abs().mean() < 0.2 * (adapter - full).abs().mean()
    assert json.loads((res.model_dir / "merged" / "config.json").read_text())["dtype"] == "bfloat16"


def test_unknown_instruction_dataset_is_a_recipe_error(catalog: Path) -> None:
    from zoo.catalog import validate

    write(
        catalog,
        "tiny-bad",
        "name: tiny-bad\nextends: _base/tiny-llama3\nmethod: qlora\nweights: {bits: 4, group_size: 64}\nparams: {dataset: alpacca}\n",
    )
    problems = validate([catalog / "tiny-bad.yaml"])
    assert len(problems) == 1 and "alpacca" in str(problems[0]) and "builtin" in str(problems[0]), problems


def test_ctrl_c_then_rerun_resumes_from_the_command_line(tmp_path: Path, catalog: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    write(
        catalog,
        "tiny-ctrlc",
        "name: tiny-ctrlc\nextends: _base/tiny-llama3\nmethod: qlora\nweights: {bits: 4, group_size: 64}\n"
        "params: {dataset: builtin, rank: 8, steps: 120, batch_size: 2, max_seq_len: 64, save_every: 3}\n",
    )
    env = {**os.environ, "ZOO_WORKDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "zoo", "--recipes", str(catalog), "build", "tiny-ctrlc", "--device", "cpu"]
    # A shell without job control starts background commands with SIGINT ignored, and Python keeps an
    # inherited "ignore"; restore the default in the child so Ctrl-C means what it does at a terminal.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    train = tmp_path / "tiny-ctrlc" / "train"
    deadline = time.time() + 120
    while not list(train.glob("checkpoint-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1].startswith("error: interrupted;")
    assert not (tmp_path / "tiny-ctrlc" / "model").exists()
    checkpoint = max(train.glob("checkpoint-*.pt"))  # a newer one may land just before the old is removed
    step = int(checkpoint.stem.split("-")[1])
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming from step {step}" in again.stderr
    record = json.loads((tmp_path / "tiny-ctrlc" / "build.json").read_text())
    assert record["method"]["resumed_from_step"] == step and record["method"]["steps"] == 120


def test_eval_measures_the_adapter_on_its_nf4_base(built, workdir: Path) -> None:
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.evaluation.run import evaluate

    built("tiny-llama3-qlora-4bit")
    result = evaluate(load_recipe("tiny-llama3-qlora-4bit", RECIPES), workdir, RECIPES, device="cpu", limit=8)
    assert {"ppl/pydoc", "mmlu/acc", "zero_shot_avg/acc"} <= result.metrics.keys()
    data = json.loads(result.eval_json.read_text())
    base = data["baseline"]["metrics"]["ppl/pydoc"]
    assert result.metrics["ppl/pydoc"] != base and "ppl/pydoc" in result.recovery
    args = ["--recipes", str(RECIPES), "eval", "tiny-llama3-qlora-4bit", "--workdir", str(workdir), "--limit", "2"]
    res = CliRunner().invoke(cli, [*args, "--backend", "vllm"])
    assert res.exit_code != 0 and "LoRA adapter" in res.stderr and "--backend hf" in res.stderr


def test_torch_backend_builds_and_loads_without_bitsandbytes(
    tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoo.lora.quantized
    from zoo.lora.load import load

    monkeypatch.setattr(zoo.lora.quantized, "default_backend", lambda: "torch")
    write(
        catalog,
        "tiny-torch",
        "name: tiny-torch\nextends: _base/tiny-llama3\nmethod: irqlora\nweights: {bits: 4, group_size: 64}\n"
        "params: {dataset: builtin, rank: 8, steps: 3, batch_size: 2, max_seq_len: 64, tau_steps: 10}\n",
    )
    res = build(load_recipe("tiny-torch", catalog), tmp_path, catalog, device="cpu")
    info = json.loads((res.model_dir / "quantization.json").read_text())
    assert info["quantization"]["backend"] == "torch" and info["training"]["compute_dtype"] == "float32"
    model = load(res.model_dir, backend="torch")
    assert type(model.base_model.model.model.layers[0].mlp.down_proj.base_layer) is torch.nn.Linear
    out = model.generate(input_ids=torch.tensor([[2040, 100, 200]]), max_new_tokens=4, do_sample=False)
    assert out.shape[1] == 7


@pytest.mark.parametrize(
    "extra,problem",
    [
        ("weights: {bits: 4, group_size: 128}", "blocks of 64"),
        ("weights: {bits: 4, group_size: channel}", "e.g. 64"),
        ("weights: {bits: 4, group_size: 64}\nfamily: llava-next\nbase: {builtin: tiny-llava-next}", "text-only"),
    ],
)
def test_lora_recipe_checks(catalog: Path, extra: str, problem: str) -> None:
    from zoo.catalog import validate

    write(catalog, "tiny-lora", f"name: tiny-lora\nextends: _base/tiny-llama3\nmethod: qlora\n{extra}\n")
    problems = validate([catalog / "tiny-lora.yaml"])
    assert any(problem in str(p) for p in problems), problems
