"""zoo export (#31): a GGUF or MLX file only where every weight decodes to the build's own, bit for bit.

The block encoders are checked against the gguf package's own decoder on synthetic Linears of every
case zoo meets (symmetric, asymmetric, 2/3/8-bit, per channel); the tiny W4 g128 build is exported to
both formats and proven; refusals exit 2 with one line and leave nothing behind; llama.cpp itself loads
the GGUF when llama-cpp-python is installed (``slow``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import RECIPES

gguf = pytest.importorskip("gguf")

NAME = "tiny-llama3-gptq-4bit"  # W4 g128 asymmetric, the build the publishing tests share


def qlinear(bits: int, group: int, symmetric: bool, rows: int = 8, cols: int = 256, seed: int = 0, scale_bits: int = 8):
    """A synthetic Linear with bf16-like scales (``scale_bits`` significant bits) and codes over the full range."""
    from zoo.export.source import QLinear

    rng = np.random.default_rng(seed)
    groups = cols // group
    mant = rng.integers(1 << (scale_bits - 1), 1 << scale_bits, size=(rows, groups))
    scales = (mant * 2.0 ** (-scale_bits - 6)).astype(np.float32)
    zeros = np.full((rows, groups), 1 << (bits - 1)) if symmetric else rng.integers(0, 1 << bits, size=(rows, groups))
    codes = rng.integers(0, 1 << bits, size=(rows, cols)).astype(np.uint8)
    return QLinear("model.layers.0.mlp.up_proj", bits, group, codes, scales, zeros.astype(np.int16), "bfloat16")


@pytest.mark.parametrize(
    "bits,group,symmetric,scale_bits,expect",
    [
        (4, 128, True, 8, "Q4_0"),  # symmetric W4: w = d * (q - 8)
        (4, 128, False, 4, "Q4_1"),  # asymmetric with -scale*zero exact in fp16
        (4, 128, False, 8, "Q5_0"),  # asymmetric, bf16 scales: code - zero in -15..15
        (3, 128, False, 8, "Q4_0"),  # W3 asymmetric fits Q4_0's offset exactly
        (2, 128, False, 8, "Q4_0"),
        (4, 256, False, 8, "Q5_0"),  # per channel: the row's scale on every 32-block
        (8, 256, True, 8, "Q8_0"),
    ],
)
def test_each_gguf_type_decodes_to_zoo_weights(bits: int, group: int, symmetric: bool, scale_bits: int, expect: str) -> None:
    from gguf.quants import dequantize

    from zoo.export.gguf_blocks import choose, encode
    from zoo.export.source import decode, same_bits

    q = qlinear(bits, group, symmetric, scale_bits=scale_bits)
    qtype, why = choose(q)
    assert (qtype, why) == (expect, "")
    got = dequantize(encode(q, qtype), getattr(gguf.GGMLQuantizationType, qtype))
    assert same_bits(got, decode(q))


def test_what_no_gguf_type_holds_is_named() -> None:
    from zoo.export.gguf_blocks import choose

    q = qlinear(8, 256, False)  # asymmetric 8-bit: code - zero spans beyond int8
    assert choose(q)[0] is None and "Q8_0: code - zero spans" in choose(q)[1]
    q = qlinear(4, 128, True)
    q.scales[0, 0] = 1e-9  # below fp16's smallest subnormal: d cannot be written
    assert choose(q)[0] is None and "is not an fp16 value" in choose(q)[1]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_mlx_packing_round_trips(bits: int) -> None:
    from zoo.export.mlx import pack, unpack

    codes = np.random.default_rng(bits).integers(0, 1 << bits, size=(3, 128)).astype(np.uint8)
    words = pack(codes, bits)
    assert words.dtype == np.uint32 and words.shape == (3, 128 * bits // 32)
    assert np.array_equal(unpack(words, bits), codes)
    assert int(words[0, 0]) & ((1 << bits) - 1) == codes[0, 0]  # element 0 in the lowest bits


def test_source_decode_is_what_transformers_loads(built) -> None:  # noqa: ANN001
    """zoo's exact decode, rounded once to the build's bf16, is every weight transformers loads from the build."""
    import torch
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    from zoo.export.source import decode, read

    model = built(NAME)
    src = read(model)
    dequantized = CompressedTensorsConfig(dequantize=True)  # the weights as transformers computes with them
    loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, quantization_config=dequantized).state_dict()
    assert len(src.quantized) == 28
    for p, q in src.quantized.items():
        ours = torch.from_numpy(decode(q)).bfloat16()
        assert torch.equal(ours.view(torch.int16), loaded[f"{p}.weight"].view(torch.int16)), p


def test_gguf_export_is_exact(built, workdir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from zoo.catalog import load
    from zoo.export.gguf_blocks import prove
    from zoo.export.run import export

    built(NAME)
    r = export(load(NAME, RECIPES), workdir, "gguf", force=True)
    assert r.status == "exported" and r.folder == workdir / NAME / "export" / "gguf"
    assert r.record.exactness["equal"] and r.record.exactness["tensors"] == 39  # 28 Linears + embeddings, head, norms
    assert set(r.record.types.values()) == {"Q5_0"}  # asymmetric bf16 scales: Q4_1's m would round in some groups
    record = json.loads((r.folder / "export.json").read_text())
    assert record["build_sha256"] and {f["path"] for f in record["files"]} == {f"{NAME}.gguf"}
    reader = gguf.GGUFReader(r.folder / f"{NAME}.gguf")
    assert reader.fields["tokenizer.ggml.pre"].contents() == "llama-bpe"
    assert reader.fields["llama.attention.head_count_kv"].contents() == 2

    # the proof can fail: one flipped code in the written file is found
    broken = tmp_path / "broken.gguf"
    data = bytearray((r.folder / f"{NAME}.gguf").read_bytes())
    t = next(t for t in reader.tensors if t.name == "blk.0.ffn_up.weight")
    data[t.data_offset + 10] ^= 0x11
    broken.write_bytes(bytes(data))
    from zoo.export import gguf as fmt
    from zoo.export.source import read

    src = read(workdir / NAME / "model")
    expected = fmt.write(src, fmt.plan(src), tmp_path / "again.gguf", NAME)
    with pytest.raises(ValueError, match="blk.0.ffn_up.weight"):
        prove(broken, expected)


def test_mlx_export_is_exact(built, workdir: Path) -> None:  # noqa: ANN001
    from zoo.catalog import load
    from zoo.export.run import export

    built(NAME)
    r = export(load(NAME, RECIPES), workdir, "mlx", force=True)
    assert r.record.exactness["equal"] and r.record.exactness["tensors"] == 28
    config = json.loads((r.folder / "config.json").read_text())
    assert config["quantization"] == {"group_size": 128, "bits": 4, "mode": "affine"}
    assert "quantization_config" not in config and (r.folder / "tokenizer.json").is_file()
    assert config["rope_theta"] == 500000.0  # mlx-lm reads this key only: without it, RoPE 10000 (+37% ppl)
    try:
        import mlx.core  # noqa: F401

        assert r.record.exactness["reader"].startswith("mlx ")
    except ImportError:
        assert "numpy decoder" in r.record.exactness["reader"]


def test_a_scheme_that_does_not_map_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    res = subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "export", "tiny-llama3-smoothquant-w8a8", "--to", "gguf",
         "--workdir", str(work)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no exact gguf export" in lines[0] and "activations" in lines[0] and "fix:" in lines[0]
    assert not (work / "tiny-llama3-smoothquant-w8a8").exists()


def test_a_refusal_or_failed_proof_leaves_nothing(built, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from zoo.catalog import load
    from zoo.errors import UsageError, VerifyError
    from zoo.export import gguf_blocks
    from zoo.export.run import export

    built(NAME)
    recipe, out = load(NAME, RECIPES), workdir / "elsewhere-gguf"
    monkeypatch.setattr(gguf_blocks, "CANDIDATES", gguf_blocks.CANDIDATES[:2])  # only Q4_0 and Q4_1: no exact type
    with pytest.raises(UsageError, match=r"model\.layers\.\S+ \(4-bit, groups of 128\) fits no GGUF block type exactly"):
        export(recipe, workdir, "gguf", out=out)
    monkeypatch.undo()
    real = gguf_blocks.encode
    monkeypatch.setattr(gguf_blocks, "encode", lambda q, t: real(q, t)[::-1].copy())  # rows swapped: a wrong file
    with pytest.raises(VerifyError, match="failed its exactness check"):
        export(recipe, workdir, "gguf", out=out)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


@pytest.mark.slow
def test_llama_cpp_serves_the_gguf_like_transformers(built, workdir: Path) -> None:  # noqa: ANN001
    """llama.cpp's own loader and tokenizer on the exported file: same tokens, perplexity within the weight-only
    tolerance of ``zoo bench`` (llama.cpp quantizes activations to 8 bits inside its CPU dot products)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.catalog import load
    from zoo.export.run import export
    from zoo.serving.schemes import TOLERANCE
    from zoo.tiny.corpus import heldout_text

    model = built(NAME)
    r = export(load(NAME, RECIPES), workdir, "gguf")
    text = "The json module serializes Python objects: json.dumps turns a dict into a string and json.loads reads it back."
    tok = AutoTokenizer.from_pretrained(model)
    llm = llama_cpp.Llama(model_path=str(r.folder / f"{NAME}.gguf"), n_ctx=256, logits_all=True, n_threads=1, verbose=False)
    assert llm.tokenize(text.encode(), add_bos=True) == tok(text)["input_ids"]  # llama.cpp's tokenizer from the file
    ids = tok(heldout_text())["input_ids"][:200]  # text the tiny base predicts well: a wrong layout shows (x2.3 ppl)
    llm.eval(ids)
    theirs = torch.log_softmax(torch.tensor(np.array(llm.scores[: len(ids)]), dtype=torch.float64), -1)
    with torch.no_grad():
        logits = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)(torch.tensor([ids])).logits[0]
    ours = torch.log_softmax(logits.double(), -1)
    pick = torch.tensor(ids[1:])[:, None]
    lp_theirs, lp_ours = theirs[:-1].gather(1, pick).mean().item(), ours[:-1].gather(1, pick).mean().item()
    assert abs(np.exp(lp_ours - lp_theirs) - 1) < TOLERANCE["weight-only"][0]  # measured: 0.23%


@pytest.mark.slow
def test_mlx_lm_serves_the_export_like_transformers(built, workdir: Path) -> None:  # noqa: ANN001
    """mlx-lm (mlx's Linux CPU wheels) loads the MLX export; perplexity within the weight-only tolerance (0.03%)."""
    mlx_lm = pytest.importorskip("mlx_lm")
    import mlx.core as mx
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.catalog import load
    from zoo.export.run import export
    from zoo.serving.schemes import TOLERANCE
    from zoo.tiny.corpus import heldout_text

    model = built(NAME)
    r = export(load(NAME, RECIPES), workdir, "mlx")
    ids = AutoTokenizer.from_pretrained(model)(heldout_text())["input_ids"][:200]
    mlx_model, _ = mlx_lm.load(str(r.folder))
    logits = mlx_model(mx.array([ids]))[0].astype(mx.float32)
    theirs = torch.log_softmax(torch.tensor(np.array(logits), dtype=torch.float64), -1)
    with torch.no_grad():
        ours = torch.log_softmax(
            AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)(torch.tensor([ids])).logits[0].double(), -1
        )
    pick = torch.tensor(ids[1:])[:, None]
    lp_theirs, lp_ours = theirs[:-1].gather(1, pick).mean().item(), ours[:-1].gather(1, pick).mean().item()
    assert abs(np.exp(lp_ours - lp_theirs) - 1) < TOLERANCE["weight-only"][0]
