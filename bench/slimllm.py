"""SliM-LLM's authors' variant against its authors' code, both through `zoo build`, on the two tiny bases.

Run: python bench/slimllm.py [--reference DIR] [--workdir DIR] [--bases tiny-llama3 tiny-llama3-outliers]
[--second-order]. Not a test: it prints a Markdown table per base. ``tiny-llama3-slimllm-2bit`` is built with
``zoo.quantize.build`` (what `zoo build` runs; on the outlier proxy as the same recipe with ``base: {builtin:
tiny-llama3-outliers}``) and measured by held-out pydoc perplexity (256-token windows, fp32) and a
reconstruction proxy: over every decoder Linear, sum tr(dW H dW^T) / sum tr(W H W^T), dW the change from the
base's weight and H its inputs' Hessian on the recipe's calibration windows in the quantized model itself.

``--reference DIR`` (their ``slim-llm`` folder from Aaronhuang-778/SliM-LLM at cfdf5ff, unmodified, outside the
repository) also builds the recipe with each Linear quantized by their code in zoo's pipeline (same windows,
same layer order): the windows zoo's replay shows a Linear are fed to their ``add_batch``, ``get_salience``,
``get_block`` and ``fasterquant(blocksize=128, percdamp=0.01)`` as their ``run.py`` calls them. Where their
search range is empty (2 or 3 groups: their code stops), k = 0 and k = 1 are scored with their
``block_quantize`` and ``kl_div`` as their search scores a k and their code quantizes at the better
(``saved_block_precision`` for k = 0, ``salient_block = nonsalient_block = 1`` for k = 1): zoo's extension,
applied to their code. ``--second-order`` adds zoo's ``params.score: second-order``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "tiny-llama3-slimllm-2bit"


def reference_step(authors: Path, bits: int, group: int) -> Any:
    """A ``native.StepFn`` that quantizes each Linear with the authors' code (imported from ``authors``)."""
    import numpy as np
    import torch

    from zoo.methods.native import Quantized

    sys.path.insert(0, str(authors))
    torch.cuda.synchronize = lambda *a, **k: None  # the only CUDA call on their CPU path
    from slim_gptq import SliMGPTQ  # type: ignore[import-not-found]
    from utils.bitsearch import block_quantize  # type: ignore[import-not-found]
    from utils.mixed_quantizer import Quantizer  # type: ignore[import-not-found]
    from utils.reconstruct import kl_div  # type: ignore[import-not-found]

    def one(module: Any, hessian: Any) -> Any:
        seen: list[tuple[Any, Any]] = []

        def make(k: int = -1) -> Any:
            q = Quantizer(module.weight, method=f"{bits}bit", groupsize=group, metric="mse", lambda_salience=1)
            slim = SliMGPTQ(module, q, salient_block=k, nonsalient_block=k, bit_width=bits)
            for x, out in seen:
                slim.add_batch(x.unsqueeze(0), out.unsqueeze(0))
            slim.get_salience(blocksize=group)
            return slim

        def extension(slim: Any, n: int) -> int:
            order = np.array(slim.block_salience).argsort()
            allocs = [[bits] * n, [bits] * n]
            allocs[1][order[0]], allocs[1][order[-1]] = bits - 1, bits + 1
            w = module.weight.data.clone()
            errors = []
            for alloc in allocs:
                tmp = torch.zeros_like(w)
                for g, b in enumerate(alloc):
                    tmp[:, g * group : (g + 1) * group] = block_quantize(w[:, g * group : (g + 1) * group], bit_width=b)
                errors.append(np.mean([kl_div(x @ tmp.T, out).item() for x, out in seen]))
            return errors.index(min(errors))

        def finish() -> Any:
            n = math.ceil(module.in_features / group)
            with contextlib.redirect_stdout(io.StringIO()):
                slim = make()
                if n >= 4:
                    for x, out in seen:
                        slim.get_block(x.unsqueeze(0), out.unsqueeze(0), blocksize=group)
                    slim.fasterquant(blocksize=group, percdamp=0.01)
                elif n == 1 or extension(slim, n) == 0:
                    slim.fasterquant(blocksize=group, percdamp=0.01, saved_block_precision=[bits] * n)
                else:
                    make(1).fasterquant(blocksize=group, percdamp=0.01)
            code = float(bits * module.weight.numel())
            return Quantized(module.weight.data.float(), bits=code + n * (module.out_features * 32 + 2), code_bits=code)

        return (lambda x, out: seen.append((x.clone(), out.clone()))), finish

    return one


def measure(folder: Path, base: Path, windows: list[list[int]], ids: list[int]) -> tuple[float, float]:
    """Pydoc perplexity and the reconstruction proxy of one build."""
    import torch
    from transformers import AutoModelForCausalLM

    from zoo.evaluation.perplexity import perplexity
    from zoo.methods.native import Hessian

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    originals = {n: m.weight.data for n, m in ref.model.layers.named_modules() if isinstance(m, torch.nn.Linear)}
    linears = {n: m for n, m in model.model.layers.named_modules() if isinstance(m, torch.nn.Linear)}
    hessians = {n: Hessian(m.in_features, "cpu") for n, m in linears.items()}
    handles = [m.register_forward_hook(hessians[n].hook) for n, m in linears.items()]
    with torch.no_grad():
        for w in windows:
            model(input_ids=torch.tensor([w]), use_cache=False)
    for h in handles:
        h.remove()
    err = sum(float(torch.trace((d := linears[n].weight.data - originals[n]) @ hs.h @ d.T)) for n, hs in hessians.items())
    total = sum(float(torch.trace(originals[n] @ hs.h @ originals[n].T)) for n, hs in hessians.items())
    return perplexity(model, ids, 256).value, err / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, help="the authors' slim-llm folder (Aaronhuang-778/SliM-LLM at cfdf5ff)")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--bases", nargs="*", default=["tiny-llama3", "tiny-llama3-outliers"])
    p.add_argument("--second-order", action="store_true", help="also build with params.score: second-order")
    args = p.parse_args()
    from transformers import AutoTokenizer

    from zoo.catalog import load
    from zoo.data.calibration import calibration, token_ids
    from zoo.methods import slimllm
    from zoo.quantize import build
    from zoo.tiny import corpus
    from zoo.tiny.bases import builtin_path

    recipes = ROOT / "recipes"
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        for name in args.bases:
            base = builtin_path(name)
            tokenizer = AutoTokenizer.from_pretrained(base)
            ids = token_ids(corpus.heldout_text(), tokenizer)
            recipe = load(RECIPE, recipes)
            if name != "tiny-llama3":
                on = recipe.base.model_copy(update={"builtin": name})
                recipe = recipe.model_copy(update={"name": RECIPE.replace("tiny-llama3", name, 1), "base": on})
            windows = calibration(recipe.calibration, tokenizer, recipes).windows
            runs: list[tuple[str, Any, Any]] = [("zoo (authors' variant, score: kl)", recipe, None)]
            if args.second_order:
                params = recipe.params.model_copy(update={"score": "second-order"})
                so = recipe.model_copy(update={"name": f"{recipe.name}-so", "params": params})
                runs.append(("zoo (score: second-order)", so, None))
            if args.reference:
                step = reference_step(args.reference.resolve(), int(recipe.weights.bits), int(recipe.weights.group_size))
                runs.append(("the authors' code (cfdf5ff)", recipe.model_copy(update={"name": f"{recipe.name}-ref"}), step))
            rows = []
            for label, r, step in runs:
                real = slimllm.step
                if step is not None:
                    slimllm.step = lambda *a, s=step: s  # type: ignore[assignment,misc]
                try:
                    folder = build(r, work, recipes, device="cpu", force=True).model_dir
                finally:
                    slimllm.step = real  # type: ignore[assignment]
                rows.append((label, *measure(folder, base, windows, ids)))
            print(f"\n| {name}, SliM-LLM W2 g128 | pydoc ppl | reconstruction proxy | ppl / authors' | proxy / authors' |")
            print("|---|---|---|---|---|")
            last = rows[-1] if args.reference else None
            for label, ppl, proxy in rows:
                ratio = f"{ppl / last[1]:.3f} | {proxy / last[2]:.3f}" if last else "- | -"
                print(f"| {label} | {ppl:.3f} | {proxy:.5f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
