"""Run inside vLLM's own python (its venv, not zoo's): the prompt log-probabilities of perplexity windows.

Started by ``zoo.evaluation.vllm_ppl`` the way ``zoo.serving.vllm_child`` is (it imports nothing from zoo):
the job comes as one JSON object on stdin; the answer is JSON lines on the original stdout (a hello with
vLLM's version and device, then the result), and everything vLLM prints goes to stderr. For each window
the answer is the mean negative log-likelihood of its tokens 2..n given the tokens before, which is what
``zoo.evaluation.perplexity`` takes from transformers' logits.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any


def _reason(e: BaseException) -> str:
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {' '.join(lines)}"


def window_nll(windows: list[list[int]], llm: Any) -> list[float]:
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)  # the prompt's own tokens only
    outs = llm.generate([{"prompt_token_ids": w} for w in windows], params, use_tqdm=False)
    nll = []
    for ids, out in zip(windows, outs, strict=True):
        logprobs = [entry[ids[i]].logprob for i, entry in enumerate(out.prompt_logprobs) if i > 0]
        nll.append(-sum(logprobs) / len(logprobs))
    return nll


def main() -> None:
    result = os.fdopen(os.dup(1), "w", buffering=1)  # the results channel
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    job = json.loads(sys.stdin.read())
    import vllm
    from vllm import LLM
    from vllm.platforms import current_platform

    cuda = current_platform.is_cuda_alike()
    result.write(json.dumps({"hello": True, "version": vllm.__version__, "device": "cuda" if cuda else "cpu"}) + "\n")
    engine: dict[str, Any] = {"gpu_memory_utilization": job["gpu_memory_utilization"]} if cuda else {}
    try:
        llm = LLM(
            model=job["model"],
            dtype=job["dtype"],
            max_model_len=job["max_model_len"],
            tensor_parallel_size=job["tensor_parallel_size"],
            seed=0,
            enforce_eager=True,
            trust_remote_code=False,
            **engine,
        )
        answer: dict[str, Any] = {"nll": window_nll(job["windows"], llm)}
    except Exception as e:
        traceback.print_exc()
        answer = {"error": _reason(e)}
    result.write(json.dumps(answer) + "\n")
    result.close()


if __name__ == "__main__":
    main()
