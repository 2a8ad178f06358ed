"""Perplexity of the tiny base after every buildable method, at the study's bit widths.

Run: python bench/methods.py [--workdir DIR] [--write-docs]. Not a test: it prints a Markdown table;
--write-docs also writes it into docs/methods.md (bench/report.py: block ``methods-<base>``, or with
--ranking ``methods-<base>-2bit`` and ``ranking-<base>``). Each tiny recipe is built with `zoo build`
(skipped when already built in DIR) and measured with the study's perplexity protocol on the
held-out pydoc text (256-token windows), next to the 16-bit base. A method with named variants
(``params.variant``: the authors' algorithm and zoo's own, ``zoo/fidelity.py``) gets one row per
variant, side by side, the default first.

``--base tiny-llama3-outliers`` builds the same recipes on the outlier proxy (``zoo/tiny/outliers.py``)
and ``--ranking`` measures just the study's 2-bit cells (and BiLLM's 1.1 bits), then prints their
order next to the order of the study's LLaMA3-8B WikiText2 perplexities, with Kendall's tau.
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
# the study's cells at 2 bits and below whose tiny twin zoo builds; their order is the one to match
RANKED = [
    "tiny-llama3-rtn-2bit",
    "tiny-llama3-gptq-2bit",
    "tiny-llama3-awq-2bit",
    "tiny-llama3-quip-2bit-pc",
    "tiny-llama3-pbllm-2bit",
    "tiny-llama3-dbllm-2bit",
    "tiny-llama3-billm-1.1bit",
]


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Rank agreement of two orderings of the same items: 1 same order, -1 reversed (no ties here)."""
    pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a))]
    agree = sum(1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1 for i, j in pairs)
    return agree / len(pairs)


def ranking(measured: dict[str, float], recipes: Path) -> tuple[list[list[str]], str]:
    """The two orders side by side (also printed) and the Kendall's tau line."""
    from zoo.catalog import load

    study = {n: load(n.replace("tiny-llama3", "llama3-8b", 1), recipes).study.wikitext2 for n in measured}
    names = [n for n in measured if study[n] is not None]
    print("\n| rank | here (pydoc ppl) | study, LLaMA3-8B (WikiText2 ppl) |")
    print("|---|---|---|")
    here = sorted(names, key=lambda n: measured[n])
    paper = sorted(names, key=lambda n: study[n] or 0.0)
    rows = []
    for i, (h, p) in enumerate(zip(here, paper, strict=True), 1):
        ours, theirs = f"{h.removeprefix('tiny-llama3-')} {measured[h]:.2f}", f"{p.removeprefix('tiny-llama3-')} {study[p]:g}"
        rows.append([str(i), ours, theirs])
        print(f"| {' | '.join(rows[-1])} |")
    tau = kendall_tau([measured[n] for n in names], [study[n] or 0.0 for n in names])
    print(f"\nKendall's tau over {len(names)} cells: {tau:.2f}")
    return rows, f"Kendall's tau between the two orders over {len(names)} cells: {tau:.2f}."


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
    p.add_argument("--base", default="tiny-llama3", help="built-in base to build on (tiny-llama3-outliers: the proxy)")
    p.add_argument("--ranking", action="store_true", help="just the 2-bit cells, ranked against the study's")
    p.add_argument("--write-docs", action="store_true", help="write the tables into docs/methods.md (not with --only)")
    args = p.parse_args()
    if args.write_docs and args.only:
        p.error("--write-docs writes whole tables: run it without --only")
    from transformers import AutoTokenizer

    from zoo.catalog import load
    from zoo.data.calibration import token_ids
    from zoo.fidelity import variants
    from zoo.quantize import build
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    recipes = ROOT / "recipes"
    base = builtin_path(args.base)
    ids = token_ids(corpus.heldout_text(), AutoTokenizer.from_pretrained(base))
    measured: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        header = ["recipe", "method", "variant", "weights", "code bits", "bits with metadata", "pydoc ppl"]
        table = [[f"{args.base} (16-bit base)", "-", "-", "bf16", "16", "16", f"{ppl(base, ids):.2f}"]]
        print(f"| {' | '.join(header)} |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {' | '.join(table[0])} |")
        runs = [(load(name, recipes), None) for name in args.only or (RANKED if args.ranking else NAMES)]
        runs = [(r, v) for r, _ in runs for v in (variants(r.method) or (None,))]
        for recipe, variant in runs:
            name = recipe.name
            if args.base != "tiny-llama3":  # the same recipe on another built-in base, built apart
                on = recipe.base.model_copy(update={"builtin": args.base})
                recipe = recipe.model_copy(update={"name": name.replace("tiny-llama3", args.base, 1), "base": on})
            shown = recipe.name  # a variant's row names its recipe; the variant column tells them apart
            if variant is not None and variant != variants(recipe.method)[0]:  # a named variant, built apart
                params = recipe.params.model_copy(update={"variant": variant})
                recipe = recipe.model_copy(update={"name": f"{recipe.name}-{variant}", "params": params})
            folder = build(recipe, work, recipes, device="cpu").model_dir
            q = folder / "quantization.json"
            record = json.loads(q.read_text()) if q.exists() else None
            if record and record.get("format") == "adapter":  # LoRA: the NF4 base's figures (the adapter adds no bits)
                record = {"code_bits_per_weight": 4.0, "bits_per_weight": record["quantization"]["bits_per_weight"]}
            g = recipe.weights.group_size
            weights = f"W{recipe.weights.bits:g} " + ("per channel" if g == "channel" else f"g{g}")
            code = f"{record['code_bits_per_weight']:.3f}" if record else f"{recipe.weights.bits:g}"
            total = f"{record['bits_per_weight']:.3f}" if record else f"{recipe.weights.bits + 32 / g:g}"
            value = ppl(folder, ids)
            if variant is None or variant == variants(recipe.method)[0]:
                measured[name] = value
            table.append([shown, recipe.method, variant or "-", weights, code, total, f"{value:.2f}"])
            print(f"| {' | '.join(table[-1])} |", flush=True)
        blocks = {f"methods-{args.base}{'-2bit' if args.ranking else ''}": {"header": header, "rows": table}}
        if args.ranking:
            order, tau = ranking({n: v for n, v in measured.items() if n in RANKED}, recipes)
            blocks[f"ranking-{args.base}"] = {"header": ["rank", "here (pydoc ppl)", "study, LLaMA3-8B (WikiText2 ppl)"],
                                              "rows": order, "notes": [tau]}  # fmt: skip
        if args.write_docs:
            import report

            report.publish("methods", "docs/methods.md", blocks)


if __name__ == "__main__":
    main()
