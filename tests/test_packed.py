"""The packed checkpoints of the native methods (#32): tight packing, bit-exact restoration, running from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import RECIPES
from zoo.methods import billm, dbllm, pbllm, quip, slimllm
from zoo.packed import bits, codec, store

METHODS = {
    "billm": "tiny-llama3-billm-1.1bit",
    "pbllm": "tiny-llama3-pbllm-2bit",
    "dbllm": "tiny-llama3-dbllm-2bit",
    "quip": "tiny-llama3-quip-2bit-pc",
    "slimllm": "tiny-llama3-slimllm-2bit",
}
BASES = ("tiny-llama3", "tiny-llama3-outliers")


@pytest.mark.parametrize("width", range(1, 9))
def test_bit_planes_round_trip_at_every_width(width: int) -> None:
    codes = torch.randint(0, 2**width, (1001,))
    planes = bits.pack(codes, width)
    assert planes.shape == (width, 126) and planes.dtype == torch.uint8  # exactly width bits a code, padded to a byte
    assert torch.equal(bits.unpack(planes, 1001), codes)


@pytest.mark.parametrize("share", [0.0, 0.01, 0.143, 0.5, 1.0])
def test_rice_coded_mask_round_trips_near_its_entropy(share: float) -> None:
    mask = torch.rand(64, 512) < share
    unary, rem, meta = bits.rice_encode(mask)
    assert torch.equal(bits.rice_decode(unary, rem, meta, mask.numel()).view_as(mask), mask)
    p = float(mask.float().mean())
    if 0.05 < p < 0.5:  # within 3% of an ideally coded bitmap
        entropy = -(p * torch.log2(torch.tensor(p)) + (1 - p) * torch.log2(torch.tensor(1 - p))) * mask.numel()
        assert (unary.numel() + rem.numel()) * 8 < 1.03 * float(entropy) + 16


def _wh() -> tuple[Any, Any]:
    torch.manual_seed(0)
    w, x = torch.randn(64, 256), torch.randn(512, 256)
    return w, 2 * x.T @ x / 512


VARIANTS = {
    "billm": lambda w, h: billm.quantize_weight(w, h, 0.1),
    "billm-zoo-obs": lambda w, h: billm.quantize_weight(w, h, 0.1, 128, 40, 0.01, "zoo-obs"),
    "pbllm": lambda w, h: pbllm.quantize_weight(w, h, 0.143),
    "pbllm-zoo-obs": lambda w, h: pbllm.quantize_weight(w, h, 0.143, variant="zoo-obs"),
    "dbllm": lambda w, h: dbllm.quantize_weight(w, h),
    "quip": lambda w, h: quip.quantize_weight(w, h, 2, 5),
    "quip-3bit": lambda w, h: quip.quantize_weight(w, h, 3, 5),
    "quip-zoo-obs": lambda w, h: quip.quantize_weight(w, h, 2, 5, variant="zoo-obs"),
    "slimllm": lambda w, h: slimllm.quantize_weight(w, h, 2),
    "slimllm-3bit": lambda w, h: slimllm.quantize_weight(w, h, 3),
    "slimllm-zoo-obs": lambda w, h: slimllm.quantize_weight(w, h, 2, variant="zoo-obs"),
    "slimllm-zoo-obs-minmax": lambda w, h: slimllm.quantize_weight(w, h, 2, one_bit_grid="minmax", variant="zoo-obs"),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_variant_decodes_bit_identically_from_its_codes(variant: str, dtype: Any) -> None:
    w, h = _wh()
    r = VARIANTS[variant](w, h)
    w16 = r.weight.to(dtype)
    spec, t = codec.encode(r.layout, w16, r.weight)
    assert all(not v.is_floating_point() for v in t.values())  # no loader can cast a table or scale
    assert torch.equal(codec.decode(spec, t).view(torch.int16), w16.view(torch.int16))
    assert spec["exceptions"] < w.numel() // 100


def test_a_result_the_rules_miss_is_kept_as_an_exception() -> None:
    w, h = _wh()
    r = billm.quantize_weight(w, h, 0.1)
    w16 = r.weight.to(torch.bfloat16)
    w16[3, 7] = 1234.0  # no block row's table holds it
    spec, t = codec.encode(r.layout, w16, r.weight)
    assert spec["exceptions"] >= 1 and torch.equal(codec.decode(spec, t).view(torch.int16), w16.view(torch.int16))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each native method's tiny recipe built once per base (the outlier base through a temporary recipe)."""
    from zoo.catalog import load
    from zoo.quantize import build

    work = tmp_path_factory.mktemp("packed-work")
    root = tmp_path_factory.mktemp("packed-recipes")
    shutil.copytree(RECIPES / "_base", root / "_base")
    done: dict[tuple[str, str], Path] = {}

    def get(method: str, base: str) -> Path:
        if (method, base) not in done:
            name = METHODS[method]
            text = (RECIPES / f"{name}.yaml").read_text()
            if base != "tiny-llama3":
                name = name.replace("tiny-llama3", base)
                text = text.replace("name: tiny-llama3", f"name: {base}") + f"base: {{builtin: {base}}}\n"
            (root / f"{name}.yaml").write_text(text)
            done[method, base] = build(load(name, root), work, root, device="cpu").model_dir.parent
        return done[method, base]

    return get


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("method", METHODS)
def test_a_build_publishes_its_codes_small_and_exact(builds: Any, method: str, base: str) -> None:
    folder = builds(method, base)
    config = json.loads((folder / "packed" / "config.json").read_text())
    q = config["quantization_config"]
    assert (q["quant_method"], q["format"], q["version"], q["method"]) == ("zoo", "zoo-packed", 2, method)
    fake = store.load_folder(folder / "model")
    # bytes within 3% of (measured bits x decoder parameters / 8) + the 16-bit rest (DB-LLM: see docs/packed.md)
    decoder = sum(fake[f"{n}.weight"].numel() for n in q["linears"])
    rest = sum(v.numel() * v.element_size() for k, v in fake.items() if k.removesuffix(".weight") not in q["linears"])
    size = sum(f.stat().st_size for f in (folder / "packed").glob("*.safetensors"))
    assert size <= 1.03 * (q["bits_per_weight"] * decoder / 8 + rest)
    if method == "dbllm":  # its codes and levels alone, without the 16-bit rest to hide in: within 3% too
        stored = sum(v.numel() * v.element_size() for k, v in store.load_folder(folder / "packed").items()
                     if k.rpartition(".")[0] in q["linears"])  # fmt: skip
        assert stored <= 1.03 * q["bits_per_weight"] * decoder / 8
    assert size < 0.6 * sum(f.stat().st_size for f in (folder / "model").glob("*.safetensors"))
    # exact: every tensor of the unpacked checkpoint equals the fake one's, and the recorded hash says so
    unpacked = store.unpacked_state(folder / "packed", q)
    assert unpacked.keys() == fake.keys()
    assert all(torch.equal(unpacked[k].view(torch.uint8), fake[k].view(torch.uint8)) for k in fake)
    assert store.state_sha256(unpacked) == q["unpacked_sha256"] == store.state_sha256(fake)


@pytest.mark.parametrize("method", METHODS)
def test_transformers_runs_the_packed_form_with_the_fake_forms_logits(builds: Any, method: str) -> None:
    from transformers import AutoModelForCausalLM

    import zoo.packed  # noqa: F401  (registers quant_method zoo)

    folder = builds(method, "tiny-llama3")
    fake = AutoModelForCausalLM.from_pretrained(folder / "model")
    packed = AutoModelForCausalLM.from_pretrained(folder / "packed")
    linear = packed.model.layers[0].self_attn.q_proj
    assert type(linear).__name__ == "PackedLinear" and not any(p.numel() > 1000 for p in linear.parameters())
    ids = torch.tensor([[1, 17, 300, 42, 7, 99, 1000, 5]])
    with torch.no_grad():
        a, b = fake(ids).logits, packed(ids).logits
    assert torch.allclose(a.float(), b.float(), rtol=2**-7, atol=0)  # bf16 rounding at most (equal in practice)


def test_zoo_unpack_writes_the_16_bit_checkpoint_or_nothing(builds: Any, tmp_path: Path) -> None:
    from zoo.cli import cli

    packed = builds("billm", "tiny-llama3") / "packed"
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["unpack", str(packed), str(out)])
    assert r.exit_code == 0, r.output
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    fake = store.load_folder(packed.parent / "model")
    assert store.state_sha256(store.load_folder(out)) == store.state_sha256(fake)
    assert CliRunner().invoke(cli, ["unpack", str(packed), str(out)]).exit_code == 2  # OUT not empty: refused
    # a packed folder whose recorded hash does not match what it decodes to: exit 10, OUT left as it was
    bad = tmp_path / "bad"
    shutil.copytree(packed, bad)
    config = json.loads((bad / "config.json").read_text())
    config["quantization_config"]["unpacked_sha256"] = "0" * 64
    (bad / "config.json").write_text(json.dumps(config))
    for target in (tmp_path / "new", tmp_path / "empty"):
        if target.name == "empty":
            target.mkdir()
        r = CliRunner().invoke(cli, ["unpack", str(bad), str(target)])
        assert r.exit_code == 10, r.output
        assert not target.exists() or not any(target.iterdir())
    assert CliRunner().invoke(cli, ["unpack", str(packed.parent / "model"), str(tmp_path / "x")]).exit_code == 2


def test_a_spec_asking_for_more_weights_than_its_bytes_hold_is_refused() -> None:
    import torch

    from zoo.errors import VerifyError
    from zoo.packed.codec import bounded

    t = {"codes": torch.zeros(16, dtype=torch.uint8)}
    assert bounded({"shape": [8, 64], "dtype": "bfloat16"}, t) == (8, 64)
    for spec in (
        {"shape": [1 << 20, 1 << 20], "dtype": "bfloat16"},  # a terabyte from 16 bytes
        {"shape": [8, -1], "dtype": "bfloat16"},
        {"shape": [8, 64], "dtype": "float64"},
        {"shape": "8x64", "dtype": "bfloat16"},
    ):
        with pytest.raises(VerifyError, match="does not fit its 16 stored bytes"):
            bounded(spec, t)


def test_billm_packed_cache_is_opt_in(builds: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ZOO_PACKED_CACHE=1 keeps each decoded weight (same logits); unset, memory holds the packed tensors only."""
    from transformers import AutoModelForCausalLM

    import zoo.packed  # noqa: F401  (registers quant_method zoo)

    folder = builds("billm", "tiny-llama3") / "packed"
    ids = torch.tensor([[1, 17, 300, 42]])
    logits = []
    for cache in ("", "1"):
        monkeypatch.setenv("ZOO_PACKED_CACHE", cache)
        model = AutoModelForCausalLM.from_pretrained(folder)
        with torch.no_grad():
            logits.append(model(ids).logits)
        linear = model.model.layers[0].mlp.down_proj
        if cache:
            assert linear.cached is not None and torch.equal(linear.cached, linear.weight16())
        else:
            assert linear.cached is None
    assert torch.equal(logits[0], logits[1])
