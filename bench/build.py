"""Build speed and memory: `zoo build` against plain llm-compressor `oneshot`, and RSS vs depth.

Run: python bench/build.py [--layers 8] [--hidden 512] [--write-docs]. Not a test: it prints figures;
--write-docs also writes its tables into docs/performance.md (bench/report.py).

1. One GPTQ W4 g128 recipe on a random-weight LLaMA-3-shaped model (8 layers, hidden 512 by default)
   built with `zoo build` and with a plain `oneshot` script, same calibration windows, each in its
   own process; wall time and peak RSS of each and their ratio.
2. Peak RSS of `zoo build` on the same shape at 2 and at 16 layers, in memory and with
   `--host-memory` set below the model's size (weights spill to disk, as a 70B build does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES, SEQLEN = 32, 256

ONESHOT = """
import sys, torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import GPTQModifier
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from llmcompressor.pipelines.cache import IntermediatesCache
IntermediatesCache.pin_memory = lambda self, *a, **k: None
path, out = sys.argv[1], sys.argv[2]
model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
tok = AutoTokenizer.from_pretrained(path)
windows = torch.load(sys.argv[3])
ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
w = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=128)
mod = GPTQModifier(config_groups={"g": QuantizationScheme(targets=["Linear"], weights=w)}, ignore=["lm_head"], actorder=None)
oneshot(model=model, dataset=ds, recipe=[mod], num_calibration_samples=len(windows), max_seq_length=len(windows[0]),
        shuffle_calibration_samples=False, pipeline="sequential", sequential_targets=["LlamaDecoderLayer"])
model.save_pretrained(out, save_compressed=True)
tok.save_pretrained(out)
"""


def make_model(folder: Path, layers: int, hidden: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from zoo.tiny.bases import builtin_path

    tiny = builtin_path("tiny-llama3")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=2048,
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 128,
        rope_parameters={"rope_type": "default", "rope_theta": 5e5},
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of one child process."""
    start = time.time()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss * 1024


def zoo_build(tmp: Path, model: Path, name: str, host_gb: float | None = None) -> tuple[float, int]:
    catalog = tmp / f"recipes-{name}"
    catalog.mkdir()
    (catalog / f"{name}.yaml").write_text(
        f"name: {name}\nfamily: llama3\nmethod: gptq\nweights: {{bits: 4, group_size: 128}}\n"
        f"base: {{path: {model}, parameters: 0.1, license: apache-2.0}}\n"
        f"calibration: {{dataset: pydoc, samples: {SAMPLES}, seqlen: {SEQLEN}}}\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "zoo",
        "-q",
        "--recipes",
        str(catalog),
        "build",
        name,
        "--workdir",
        str(tmp / "work"),
        "--device",
        "cpu",
    ]
    if host_gb is not None:
        cmd += ["--host-memory", str(host_gb)]
    return run(cmd, {"ZOO_CACHE": str(tmp / "cache")})


def main() -> None:
    p = argparse.ArgumentParser(description="zoo build vs llm-compressor oneshot; RSS vs depth")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--write-docs", action="store_true", help="write the tables into docs/performance.md")
    args = p.parse_args()
    import torch
    from transformers import AutoTokenizer

    from zoo.data.calibration import draw, token_ids
    from zoo.tiny import corpus

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        model = tmp / f"llama-{args.layers}x{args.hidden}"
        make_model(model, args.layers, args.hidden)
        tok = AutoTokenizer.from_pretrained(model)
        text = corpus.train_text()
        windows = draw(token_ids(text, tok), SAMPLES, SEQLEN, 0)
        torch.save(windows, tmp / "windows.pt")
        size = sum(f.stat().st_size for f in model.glob("*.safetensors"))
        shape = f"{args.layers} layers, hidden {args.hidden}, {size / 1e6:.0f} MB bf16"
        print(f"model: {shape}; GPTQ W4 g128, {SAMPLES} x {SEQLEN} tokens")
        zw, zr = zoo_build(tmp, model, "bench-zoo")
        ow, orss = run([sys.executable, "-c", ONESHOT, str(model), str(tmp / "oneshot-out"), str(tmp / "windows.pt")])
        print(f"{'':24}{'wall s':>8}{'peak RSS MB':>13}")
        print(f"{'zoo build':24}{zw:8.1f}{zr / 1e6:13.0f}")
        print(f"{'llmcompressor oneshot':24}{ow:8.1f}{orss / 1e6:13.0f}")
        print(f"{'ratio zoo/oneshot':24}{zw / ow:8.2f}{zr / orss:13.2f}")
        print()
        print(f"{'layers':>6}{'bf16 MB':>9}{'RSS in memory MB':>18}{'RSS --host-memory MB':>22}")
        depth = []
        for layers in (2, 16):
            m = tmp / f"llama-{layers}x{args.hidden}"
            make_model(m, layers, args.hidden)
            mb = sum(f.stat().st_size for f in m.glob("*.safetensors")) / 1e6
            _, mem = zoo_build(tmp, m, f"mem-{layers}")
            _, off = zoo_build(tmp, m, f"off-{layers}", host_gb=0.02)
            print(f"{layers:6d}{mb:9.0f}{mem / 1e6:18.0f}{off / 1e6:22.0f}")
            depth.append([layers, f"{mb:.0f}", f"{mem / 1e6:.0f}", f"{off / 1e6:.0f}"])
        print(json.dumps({"zoo_s": zw, "oneshot_s": ow, "zoo_rss": zr, "oneshot_rss": orss}))
        if args.write_docs:
            import report

            versus = [
                ["`zoo build`", f"{zw:.1f}", f"{zr / 1e6:.0f}"],
                ["plain llm-compressor `oneshot` script", f"{ow:.1f}", f"{orss / 1e6:.0f}"],
                ["ratio", f"{zw / ow:.2f}", f"{zr / orss:.2f}"],
            ]
            note = f"Model: {shape}; GPTQ W4 g128, {SAMPLES} x {SEQLEN} calibration tokens; each build in its own process."
            header = ["layers", "bf16 MB", "RSS in memory MB", "RSS with --host-memory 0.02 MB"]
            report.publish("build", "docs/performance.md", {
                "build": {"header": ["", "wall s", "peak RSS MB"], "rows": versus, "notes": [note]},
                "build-depth": {"header": header, "rows": depth},
            })  # fmt: skip


if __name__ == "__main__":
    main()
