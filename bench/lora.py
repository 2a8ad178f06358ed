"""QLoRA pieces against bitsandbytes, measured in one run on this machine.

Run: python bench/lora.py [--write-docs]. Not a test: it prints a Markdown table; --write-docs also writes
it into docs/methods.md (bench/report.py).
1. NF4 quantization of one LLaMA-3-8B-shaped weight (4096 x 14336, double quantization): zoo's torch
   quantizer (``zoo/lora/nf4.py``, used by IR-QLoRA's search and where bitsandbytes is missing)
   against ``bitsandbytes.functional.quantize_4bit``.
2. IR-QLoRA's tau search on that weight (201 candidates per block, the authors' grid).
3. One LoRA training step (r 8, batch 4 x 128 tokens) on the tiny base quantized with each backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def train_step_seconds(backend: str) -> float:
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from zoo.lora.quantized import quantize_base
    from zoo.tiny.bases import builtin_path

    model = transformers.AutoModelForCausalLM.from_pretrained(builtin_path("tiny-llama3"), dtype=torch.float32)
    quantize_base(model, 64, True, "cpu", torch.float32, backend)  # type: ignore[arg-type]
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 2000, (4, 128), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        peft_model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()

    return timed(step, repeat=5)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/methods.md")
    args = p.parse_args()
    import bitsandbytes.functional as F
    import torch

    from zoo.lora import icq, nf4

    w = torch.randn(4096, 14336, generator=torch.Generator().manual_seed(0)) * 0.02
    ours = timed(lambda: nf4.quantize(w, 64, True))
    theirs = timed(lambda: F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True))
    part = w[:512]
    search = timed(lambda: icq.search_tau(part, 64, 0.1, 100), repeat=1) * (w.shape[0] / part.shape[0])
    header = ["measurement (CPU)", "zoo", "bitsandbytes"]
    rows = [
        ["NF4 quantize 4096 x 14336, double quant", f"{ours:.2f} s", f"{theirs:.2f} s"],
        ["IR-QLoRA tau search, same weight (201 candidates)", f"{search:.1f} s", "-"],
        ["LoRA train step, tiny base, batch 4 x 128", f"{train_step_seconds('torch') * 1e3:.0f} ms (torch NF4)",
         f"{train_step_seconds('bitsandbytes') * 1e3:.0f} ms (Linear4bit)"],
    ]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.write_docs:
        import report

        report.publish("lora", "docs/methods.md", {"lora": {"header": header, "rows": rows}})


if __name__ == "__main__":
    main()
