"""Tokens/s of a packed checkpoint (decoded per forward by zoo's quantizer) against its fake 16-bit form.

    python bench/packed.py <workdir>/<name>          # the build folder: model/ and packed/
    python bench/packed.py <workdir>/<name> --tokens 256 --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def tokens_per_s(model: object, ids: object, rounds: int) -> float:
    import torch

    with torch.no_grad():
        model(ids)  # warm-up
        start = time.perf_counter()
        for _ in range(rounds):
            model(ids)
        if ids.device.type == "cuda":  # type: ignore[attr-defined]
            torch.cuda.synchronize()
    return rounds * ids.numel() / (time.perf_counter() - start)  # type: ignore[attr-defined]


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    import zoo.packed  # noqa: F401  (registers quant_method zoo)

    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    ids = torch.randint(0, 1000, (1, a.tokens), device=a.device)
    speed = {}
    for form in ("model", "packed"):
        model = AutoModelForCausalLM.from_pretrained(a.folder / form).to(a.device)
        speed[form] = tokens_per_s(model, ids, a.rounds)
        print(f"{form:7s} {speed[form]:10.1f} tokens/s (prefill of {a.tokens}, {a.device})")
    print(f"packed is {speed['model'] / speed['packed']:.1f}x slower than fake 16-bit")


if __name__ == "__main__":
    main()
