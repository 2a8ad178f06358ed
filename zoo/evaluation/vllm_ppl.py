"""Perplexity on the vLLM backend, from prompt log-probabilities, so a ``--backend vllm`` eval needs no HF load.

vLLM loads the checkpoint itself, sharded over ``tensor_parallel_size`` GPUs (what ``zoo plan`` gives
the stage), and returns each window token's log-probability given the tokens before it; a window's loss
is the mean of their negatives, the perplexity exp of the mean over windows, exactly as
``zoo.evaluation.perplexity`` computes it from transformers' logits (the same windows, no BOS added).
The engine runs in a child process (``vllm_ppl_child.py``) in vLLM's python (``ZOO_VLLM_PYTHON``, else
this one when vLLM imports here), in its own process group, the way ``zoo.serving`` drives vLLM: when the
child exits, every byte of GPU memory it held is given back before the next engine starts.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from zoo.errors import MissingExtraError, ZooError
from zoo.evaluation.perplexity import Perplexity, windows
from zoo.untrusted import plain

log = logging.getLogger(__name__)
CHILD = Path(__file__).with_name("vllm_ppl_child.py")
TIMEOUT_S = 6 * 3600.0  # a 70B engine start and C4's 256 windows on two GPUs take well under an hour
UTILIZATION = 0.8  # as lm-eval's vLLM backend is started (harness.py), so zoo plan's figure holds


def perplexity(
    model_dir: Path,
    ids: list[int],
    seqlen: int,
    max_windows: int | None = None,
    tensor_parallel_size: int | None = None,
    dtype: str = "auto",
    timeout_s: float = TIMEOUT_S,
) -> Perplexity:
    """The perplexity of ``ids`` cut into ``seqlen`` windows, from vLLM's prompt log-probabilities;
    ``tensor_parallel_size`` None: every visible GPU, as lm-eval's vLLM backend is started."""
    from zoo.serving import vllm_process

    if tensor_parallel_size is None:
        from zoo.evaluation.harness import tensor_parallel

        tensor_parallel_size = tensor_parallel()

    chunks = windows(ids, seqlen, max_windows)
    if not chunks:
        raise ValueError(f"text has {len(ids)} tokens, fewer than one window of {seqlen}")
    python = vllm_process.python()
    if python is None:
        raise MissingExtraError(
            f"--backend vllm needs vLLM, which is not installed here; fix: pip install vllm, or set {vllm_process.ENV} "
            "to a venv's python that has it (docs/serving.md)"
        )
    job = {
        "model": str(model_dir),
        "dtype": dtype,
        "max_model_len": seqlen + 1,  # the window and the one token vLLM must generate
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": UTILIZATION,
        "windows": chunks,
    }
    hello, answer = _run(python, job, timeout_s)
    if "nll" not in answer:
        raise ZooError(
            f"vLLM could not compute perplexity for {plain(model_dir.parent.name)}: "
            f"{plain(answer.get('error', 'no answer'), 400)}; "
            "fix: evaluate with --backend hf, or see -vv for vLLM's log"
        )
    nll = [float(x) for x in answer["nll"]]
    log.info("%s: perplexity from vLLM %s on %s, tensor parallel %d", model_dir.parent.name, plain(hello.get("version")),
             plain(hello.get("device")), tensor_parallel_size)  # fmt: skip
    return Perplexity(math.exp(sum(nll) / len(nll)), len(chunks), len(chunks) * seqlen, seqlen)


def _run(python: str, job: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hello, answer) from one child in its own process group (``zoo.serving.vllm_process.converse``)."""
    from zoo.serving.vllm_process import converse

    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "PYTHONNOUSERSITE": "1"}  # fmt: skip
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.pop("PYTHONPATH", None)  # zoo's packages must not shadow the venv's transformers
    talk = converse(python, CHILD, job, env, timeout_s, "zoo-vllm-ppl-")
    lines = talk.answers
    why = f"no answer within {timeout_s:.0f} s" if talk.timed_out else None
    if len(lines) < 2:
        why = why or f"exited with code {talk.returncode}: {talk.last_words}"
    if len(lines) < 2 or "error" in lines[-1]:
        log.debug("vLLM's stderr:\n%s", talk.stderr_tail)
    hello = lines[0] if lines and lines[0].get("hello") else {}
    answer = lines[-1] if len(lines) >= 2 else {"error": why}
    return hello, answer
