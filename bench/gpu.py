"""GPU proof harness: zoo against plain llm-compressor and lm-eval on LLaMA-3-8B / 70B-shaped models.

Run (a lent GPU, a 10-minute window; docs/gpu.md says how to get the wheels there):
    python bench/gpu.py --shape 8b --layers 4 --minutes 8 --out gpu.json
and on a CPU, shrunk, in seconds (the test in tests/test_gpu_bench.py does this):
    python bench/gpu.py --device cpu --tiny --layers 2 --only build --schemes rtn --out cpu.json

Parts (`--only`, comma-separated; all by default), run in priority order until `--minutes` is spent:
  build    zoo build vs a plain llm-compressor oneshot script per scheme (GPTQ W4 g128, AWQ W4 g128,
           RTN W8 per channel, SmoothQuant W8A8): wall s, peak GPU memory, peak host RSS, output size
  eval     zoo's perplexity vs lm-eval's rolling loglikelihood (HF backend; vLLM where importable)
  serve    each built format loaded by transformers (and vLLM): prefill / decode tokens/s, batch 1 and 16
  quality  each build's logits on a fixed batch against the 16-bit model's: relative error
  native   seconds per decoder layer of QuIP, PB-LLM, DB-LLM, BiLLM, SliM-LLM (zoo's own methods)
  lora     20 QLoRA / IR-QLoRA steps: seconds per step
A part that would not fit in what is left of `--minutes` is skipped and its row says so. The model has
LLaMA-3's exact configuration with `--layers` random decoder layers; `--hidden` / `--tiny` shrink it.
Prints Markdown tables and PASS / FAIL / n.a. target lines; `--out` writes JSON; `--doc FILE` writes the
tables into FILE's `<!-- bench:gpu -->` block.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # bench/, then zoo

from gpu_model import SHAPES, make_model, random_text, shrunk, tokenizer_dir  # noqa: E402
from gpu_report import doc_block, meta, render, targets  # noqa: E402
from gpu_tasks import LORA, NATIVE, SCHEMES, Ctx, build_pair, in_model, lora, native, zoo_build  # noqa: E402

PARTS = ("build", "eval", "serve", "quality", "native", "lora")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: " + ",".join(PARTS))
    p.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    p.add_argument("--layers", type=int, default=4, help="decoder layers of the random model")
    p.add_argument("--minutes", type=float, default=8.0, help="time budget; parts that would not fit are skipped")
    p.add_argument("--device", choices=("cuda", "cpu"))
    p.add_argument("--hidden", type=int, help="shrink the width (heads, FFN and KV heads follow LLaMA-3's ratios)")
    p.add_argument("--vocab", type=int, help="embedding rows (default the shape's 128256)")
    p.add_argument("--tiny", action="store_true", help="CPU smoke size: hidden 256, the tokenizer's vocab, small batches")
    p.add_argument("--samples", type=int, help="calibration windows (default 128; --tiny 8)")
    p.add_argument("--seqlen", type=int, help="calibration and eval window (default 2048; --tiny 128)")
    p.add_argument("--schemes", default=",".join(SCHEMES), help="build schemes: " + ",".join(SCHEMES))
    p.add_argument("--native", default=",".join(NATIVE), help="native methods: " + ",".join(NATIVE))
    p.add_argument("--lora", default=",".join(LORA), help="LoRA methods: " + ",".join(LORA))
    p.add_argument("--lora-steps", type=int, default=20)
    p.add_argument("--out", type=Path, help="write the JSON here")
    p.add_argument("--doc", type=Path, help="write the tables into this Markdown file's bench:gpu block")
    p.add_argument("--dir", type=Path, help="scratch folder's parent (needs ~3x the model's size)")
    args = p.parse_args(argv)
    for name, allowed in (("only", PARTS), ("schemes", SCHEMES), ("native", NATIVE), ("lora", LORA)):
        picked = [x for x in getattr(args, name).split(",") if x]
        bad = [x for x in picked if x not in allowed]
        if bad:
            p.error(f"--{name}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
        setattr(args, name, picked)
    if args.layers < 1 or args.minutes <= 0:
        p.error("--layers must be at least 1 and --minutes above 0")
    return args


def sizes(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    """Work sizes: the study's on a GPU, a smoke test's with --tiny."""
    tiny = args.tiny
    return {
        "samples": args.samples or (8 if tiny else 128),
        "seqlen": args.seqlen or (128 if tiny else 2048),
        "eval_windows": 4 if tiny or not cuda else 32,
        "eval_batches": [1, 4] if tiny or not cuda else [1, 4, 8, 16],
        "serve_batches": [1, 16],
        "prompt": 16 if tiny else 512,
        "new": 8 if tiny else 128,
        "quality_batch": [2, 32] if tiny else [4, 512],
        "lora_batch": 2 if tiny else 16,
        "lora_seqlen": 64 if tiny else 512,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    start = time.time()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device; fix: run on the GPU box, or --device cpu")
    size = sizes(args, device == "cuda")
    vocab = args.vocab or (json.loads((tokenizer_dir() / "config.json").read_text())["vocab_size"] if args.tiny else None)
    shape = shrunk(SHAPES[args.shape], args.hidden or (256 if args.tiny else None), vocab)
    parts: dict[str, dict[str, Any]] = {p: {"rows": []} for p in args.only}
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-bench-", dir=args.dir) as t:
        tmp = Path(t)
        os.environ["ZOO_CACHE"] = str(tmp / "cache")
        model = tmp / "base"
        t0 = time.time()
        weight_bytes = make_model(model, shape, args.layers, device)
        made_s = time.time() - t0
        calib, evaltext, windows = tmp / "calib.txt", tmp / "eval.txt", tmp / "windows.pt"
        random_text(calib, max(4 * size["seqlen"], 20000), 0)
        random_text(evaltext, int(size["eval_windows"] * size["seqlen"] * 1.3) + 64, 1)
        from transformers import AutoTokenizer

        from zoo.data.calibration import calibration
        from zoo.recipe.schema import CalibrationSpec

        spec = CalibrationSpec(dataset="file", path=str(calib), samples=size["samples"], seqlen=size["seqlen"])
        torch.save(torch.tensor(calibration(spec, AutoTokenizer.from_pretrained(model)).windows), windows)
        ctx = Ctx(tmp, model, shape, args.layers, device, size["samples"], size["seqlen"], calib, windows,
                  start + args.minutes * 60)  # fmt: skip
        want = set(args.only)
        prereq: list[dict[str, Any]] = []

        def load(label: str, path: Path, serve: bool, reference: bool = False) -> None:
            job: dict[str, Any] = {"model": str(path), "vocab": min(shape.vocab, 2000), "prompt": size["prompt"],
                                   "new": size["new"], "serve_batches": size["serve_batches"] if serve else []}  # fmt: skip
            if "quality" in want:
                job.update(logits=str(tmp / "logits-16bit.pt"), reference=reference, quality_batch=size["quality_batch"])
            if not job["serve_batches"] and "quality" not in want:
                return
            tokens = size["quality_batch"][0] * size["quality_batch"][1] + 16 * (size["prompt"] + size["new"]) * 2
            got = in_model(ctx, "load", job, ctx.start_s + 2 * shape.params(args.layers) * tokens / ctx.rate * 4)
            if serve and "serve" in want:
                parts["serve"]["rows"].append({"format": label, **{k: v for k, v in got.items() if k != "rel_error"}})
            if "quality" in want and not reference:
                parts["quality"]["rows"].append({"format": label, "status": got["status"], "rel_error": got.get("rel_error")})

        if {"serve", "quality"} & want:
            load("16-bit", model, "serve" in want, reference=True)
        def evaluate() -> None:
            job = {"model": str(model), "text": str(evaltext), "seqlen": size["seqlen"], "windows": size["eval_windows"],
                   "batches": size["eval_batches"]}  # fmt: skip
            tokens = 2 * len(size["eval_batches"]) * size["eval_windows"] * size["seqlen"]
            got = in_model(ctx, "eval", job, ctx.start_s + 2 * shape.params(args.layers) * tokens / ctx.rate * 4)
            parts["eval"]["rows"] = got.pop("rows", [])
            parts["eval"]["process"] = got

        for i, scheme in enumerate(args.schemes):  # the first scheme's pair, then eval: the headline figures first
            if "build" in want:
                parts["build"]["rows"] += build_pair(ctx, scheme)
            elif {"serve", "quality"} & want:
                prereq.append({"scheme": scheme, **zoo_build(ctx, f"bench-{scheme}", SCHEMES[scheme])})
            if i == 0 and "eval" in want:
                evaluate()
            for side in ("bench", "oneshot"):
                path = ctx.builds.get(f"{side}-{scheme}")
                if path is not None:
                    load(f"{'zoo' if side == 'bench' else 'oneshot'} {scheme}", path, side == "bench" and "serve" in want)
        if "eval" in want and not args.schemes:
            evaluate()
        for method in args.native if "native" in want else []:
            parts["native"]["rows"].append(native(ctx, method))
        for method in args.lora if "lora" in want else []:
            parts["lora"]["rows"].append(lora(ctx, method, args.lora_steps, size["lora_batch"], size["lora_seqlen"]))
        for name, part in parts.items():
            rows = part["rows"] or ([part["process"]] if "process" in part else [])
            part["status"] = "ran" if any(r.get("status", "ok") == "ok" for r in rows) else "skipped"
            if not rows:
                part["reason"] = f"nothing selected for {name}"
    result = {
        "meta": meta(args, device, shape, weight_bytes, made_s, size, time.time() - start),
        "parts": parts,
        "prerequisites": prereq,
    }
    result["targets"] = targets(result)
    text = render(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.doc:
        doc_block(args.doc, text)
    return result


if __name__ == "__main__":
    main()
