"""Perplexity of the tiny base after every buildable method, at the study's bit widths.

Run: python bench/methods.py [--workdir DIR]. Not a test: it prints a Markdown table (the one in the
README). Each tiny recipe is built with `zoo build` (skipped when already built in DIR) and measured
with the study's perplexity protocol on the held-out pydoc text (256-token windows), next to the
16-bit base. A method with named variants (``params.variant``: the authors' algorithm and zoo's own,
``zoo/fidelity.py``) gets one row per variant, side by side, the default first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    *(f"tiny-llama3-{m}-{b}" for m in ("rtn", "gptq", "awq") for b in ("4bit", "3bit", "2bit")),
    "tiny-llama3-quip-2bit-pc",
    "tiny-llama3-pbllm-2bit",
    "tiny-llama3-dbllm-2bit",
    "tiny-llama3-slimllm-2bit",
    "tiny-llama3-billm-1.1bit",
    "tiny-llama3-qlora-4bit",
    "tiny-llama3-irqlora-4bit",
]


def ppl(folder: Path, ids: list[int]) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    from zoo.evaluation.perplexity import perplexity
    from zoo.lora.load import is_adapter, load

    model = load(folder) if is_adapter(folder) else AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return perplexity(model, ids, 256).value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path)
    p.add_argument("--only", nargs="*", help="measure just these recipes")
    args = p.parse_args()
    from transformers import AutoTokenizer

    from zoo.build import build
    from zoo.catalog import load
    from zoo.data.calibration import token_ids
    from zoo.fidelity import variants
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    recipes = ROOT / "recipes"
    base = builtin_path("tiny-llama3")
    ids = token_ids(corpus.heldout_text(), AutoTokenizer.from_pretrained(base))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        print("| recipe | method | variant | weights | code bits | bits with metadata | pydoc ppl |")
        print("|---|---|---|---|---|---|---|")
        print(f"| tiny-llama3 (16-bit base) | - | - | bf16 | 16 | 16 | {ppl(base, ids):.2f} |")
        runs = [(load(name, recipes), None) for name in args.only or NAMES]
        runs = [(r, v) for r, _ in runs for v in (variants(r.method) or (None,))]
        for recipe, variant in runs:
            name = recipe.name
            if variant is not None and variant != variants(recipe.method)[0]:  # a named variant, built apart
                params = recipe.params.model_copy(update={"variant": variant})
                recipe = recipe.model_copy(update={"name": f"{name}-{variant}", "params": params})
            folder = build(recipe, work, recipes, device="cpu").model_dir
            q = folder / "quantization.json"
            record = json.loads(q.read_text()) if q.exists() else None
            if record and record.get("format") == "adapter":  # LoRA: the NF4 base's figures (the adapter adds no bits)
                record = {"code_bits_per_weight": 4.0, "bits_per_weight": record["quantization"]["bits_per_weight"]}
            g = recipe.weights.group_size
            weights = f"W{recipe.weights.bits:g} " + ("per channel" if g == "channel" else f"g{g}")
            code = f"{record['code_bits_per_weight']:.3f}" if record else f"{recipe.weights.bits:g}"
            total = f"{record['bits_per_weight']:.3f}" if record else f"{recipe.weights.bits + 32 / g:g}"
            row = f"| {name} | {recipe.method} | {variant or '-'} | {weights} | {code} | {total} | {ppl(folder, ids):.2f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
