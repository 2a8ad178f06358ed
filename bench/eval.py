"""Perplexity throughput: zoo's batched windows against lm-eval's rolling loglikelihood, same model and text.

Run: python bench/eval.py [--layers 8] [--hidden 512] [--seqlen 256] [--windows 64] [--write-docs]. Not a
test: it prints figures; --write-docs also writes its table into docs/performance.md (bench/report.py).
`--only zoo|lm-eval --batch-size N` runs one side alone (to time it as a whole process).

Both sides score the same token ids (the held-out pydoc text, tokenized once) with the same random-weight
LLaMA-3-shaped model in fp32 on the CPU, `torch.inference_mode`. The protocols differ as the study's and
lm-eval's do: zoo (GPTQ's) cuts the ids into disjoint `seqlen` windows, drops the tail and scores
seqlen-1 tokens per window; lm-eval's `loglikelihood_rolling` scores every token, each window of
`max_length` predicting `max_length` tokens from the previous one (the first from the EOT token). Both
report token perplexity here (lm-eval's summed log-likelihood over its scored tokens), so the two
values are close but not equal. Throughput counts the tokens each side scored, per second of CPU time.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def _model(folder: Path, layers: int, hidden: int) -> Any:
    import sys

    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(ROOT))
    from build import make_model  # the random-weight LLaMA-3 shape bench/build.py uses

    make_model(folder, layers, hidden)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def zoo_side(model: Any, ids: list[int], seqlen: int, batch_size: int) -> tuple[float, int, float]:
    from zoo.evaluation.perplexity import perplexity

    t = time.process_time()
    p = perplexity(model, ids, seqlen, batch_size=batch_size)
    return p.value, p.windows * (seqlen - 1), time.process_time() - t


def lm_eval_side(model: Any, tokenizer: Any, ids: list[int], seqlen: int, batch_size: int) -> tuple[float, int, float]:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=seqlen)
    text = tokenizer.decode(ids)
    scored = len(lm.tok_encode(text))
    req = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
    t = time.process_time()
    with torch.inference_mode():
        (ll,) = lm.loglikelihood_rolling([req], disable_tqdm=True)
    return math.exp(-ll / scored), scored, time.process_time() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--seqlen", type=int, default=256)
    p.add_argument("--windows", type=int, default=64, help="windows of held-out text to score")
    p.add_argument("--only", choices=("zoo", "lm-eval"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    args = p.parse_args()
    import torch
    from transformers import AutoTokenizer

    from zoo.data.calibration import token_ids
    from zoo.tiny import corpus

    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp) / "m", args.layers, args.hidden)
        tok = AutoTokenizer.from_pretrained(Path(tmp) / "m")
        ids = token_ids(corpus.heldout_text() + "\n\n" + corpus.train_text(), tok)[: args.windows * args.seqlen]
        if args.only == "zoo":
            print(zoo_side(model, ids, args.seqlen, args.batch_size))
            return
        if args.only == "lm-eval":
            print(lm_eval_side(model, tok, ids, args.seqlen, args.batch_size))
            return
        print(f"model: {args.layers} layers, hidden {args.hidden}, fp32, CPU; {len(ids)} tokens, windows of {args.seqlen}")
        print(f"{'':26}{'batch':>6}{'token ppl':>11}{'tokens':>8}{'CPU s':>8}{'tokens/CPU-s':>14}")
        rows = {}
        for bs in (1, 8, 16):
            rows[("zoo", bs)] = zoo_side(model, ids, args.seqlen, bs)
            rows[("lm-eval", bs)] = lm_eval_side(model, tok, ids, args.seqlen, bs)
        for (side, bs), (ppl, n, cpu) in rows.items():
            name = "zoo perplexity" if side == "zoo" else "lm-eval loglikelihood_rolling"
            print(f"{name:26.26}{bs:6d}{ppl:11.2f}{n:8d}{cpu:8.2f}{n / cpu:14.0f}")
        best_lm = max(n / cpu for (side, _), (_, n, cpu) in rows.items() if side == "lm-eval")
        best_zoo = max(n / cpu for (side, _), (_, n, cpu) in rows.items() if side == "zoo")
        print(f"zoo best / lm-eval best (tokens per CPU-second): {best_zoo / best_lm:.2f}")
        if args.write_docs:
            import report

            table = [[bs, f"{rows[('zoo', bs)][1] / rows[('zoo', bs)][2]:.0f}",
                      f"{rows[('lm-eval', bs)][1] / rows[('lm-eval', bs)][2]:.0f}"] for bs in (1, 8, 16)]  # fmt: skip
            notes = [
                f"Model: {args.layers} layers, hidden {args.hidden}, fp32, CPU; {len(ids)} tokens, windows of {args.seqlen}.",
                f"zoo's best is {best_zoo / best_lm:.2f}x lm-eval's best (tokens per CPU-second); token perplexity "
                f"{rows[('zoo', 1)][0]:.0f} (zoo) and {rows[('lm-eval', 1)][0]:.0f} (lm-eval), the protocols differing.",
            ]
            header = ["batch", "zoo tokens per CPU-s", "lm-eval tokens per CPU-s"]
            report.publish("eval", "docs/performance.md", {"eval": {"header": header, "rows": table, "notes": notes}})


if __name__ == "__main__":
    main()
