"""Tokens/s of packed checkpoints (decoded per forward by zoo's quantizer) against their fake 16-bit form, same run.

    python bench/packed.py <workdir>/<name> [<workdir>/<name> ...]      # build folders: model/ and packed/
    python bench/packed.py <workdir>/<name> --tokens 256 --device cuda
    python bench/packed.py <workdir>/<name> ... --write-docs --label after  # docs/packed.md, block packed-after

Per build it loads the fake checkpoint (``model/``), the packed one (``packed/``, every forward decodes each
Linear), and the packed one with ``ZOO_PACKED_CACHE=1`` (each Linear keeps its decoded weight after its first
forward), and prints for each: prefill tokens/s, how many times slower than fake, what the model holds in
memory after the runs (parameters, buffers and cached weights), and the largest logit difference from fake
(0: equal). Not a test: timings depend on the machine; the figures say which one in docs/packed.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def tokens_per_s(model: Any, ids: Any, rounds: int) -> tuple[float, Any]:
    """Prefill tokens/s over ``rounds`` forwards after one warm-up, and the warm-up's logits."""
    import torch

    with torch.no_grad():
        logits = model(ids).logits
        start = time.perf_counter()
        for _ in range(rounds):
            model(ids)
        if ids.device.type == "cuda":
            torch.cuda.synchronize()
    return rounds * ids.numel() / (time.perf_counter() - start), logits


def held_bytes(model: Any) -> int:
    """Bytes the model holds: parameters, buffers and any decoded weight a packed Linear cached."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    for m in model.modules():
        cached = getattr(m, "cached", None)
        if cached is not None:
            tensors[id(cached)] = cached
    return sum(t.numel() * t.element_size() for t in tensors.values())


def load(folder: Path, cache: bool, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    os.environ["ZOO_PACKED_CACHE"] = "1" if cache else ""
    try:
        return AutoModelForCausalLM.from_pretrained(folder).to(device)
    finally:
        os.environ.pop("ZOO_PACKED_CACHE", None)


def measure(build: Path, ids: Any, rounds: int, device: str) -> list[list[str]]:
    rows: list[list[str]] = []
    fake_speed, fake_logits = 0.0, None
    for form, folder, cache in (("fake", "model", False), ("packed", "packed", False), ("packed, cached", "packed", True)):
        model = load(build / folder, cache, device)
        speed, logits = tokens_per_s(model, ids, rounds)
        if fake_logits is None:
            fake_speed, fake_logits = speed, logits
        diff = float((logits.float() - fake_logits.float()).abs().max())
        held = f"{held_bytes(model) / 1e6:.2f}"
        rows.append([build.name, form, f"{speed:.1f}", f"{fake_speed / speed:.2f}x", held, f"{diff:g}"])
        print(" | ".join(rows[-1]), flush=True)
        del model
    return rows


def main() -> None:
    import torch

    import zoo.packed  # noqa: F401  (registers quant_method zoo)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", type=Path, nargs="+", help="build folders, each with model/ and packed/")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write-docs", action="store_true", help="write the table into docs/packed.md (block packed-LABEL)")
    ap.add_argument("--label", default="cpu", help="the block's name after 'packed-' (e.g. before / after a change)")
    a = ap.parse_args()
    torch.manual_seed(0)
    ids = torch.randint(0, 1000, (1, a.tokens), device=a.device)
    header = ["build", "form", "tokens/s", "time vs fake", "held in memory (MB)", "max logit diff vs fake"]
    print(" | ".join(header))
    rows = [row for build in a.builds for row in measure(build, ids, a.rounds, a.device)]
    if a.write_docs:
        sys.path.insert(0, str(ROOT / "bench"))
        import report

        threads = torch.get_num_threads()
        notes = [f"Prefill of {a.tokens} tokens, {a.rounds} rounds after a warm-up, on {a.device} ({threads} torch threads)."]
        report.publish("packed", "docs/packed.md", {f"packed-{a.label}": {"header": header, "rows": rows, "notes": notes}})


if __name__ == "__main__":
    main()
