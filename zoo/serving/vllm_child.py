"""Run inside vLLM's own python (its venv, not zoo's): load one or more checkpoints, answer in JSON.

zoo and vLLM need different transformers and compressed-tensors versions, so vLLM runs in a venv of
its own and zoo starts this file there (``zoo.serving.vllm_process``); it imports nothing from zoo. The job
comes as one JSON object on stdin; each model's result is one JSON line on the original stdout, and
everything else that vLLM or its kernels print goes to stderr, so no log line can pass as a result.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any


def _reason(e: BaseException) -> str:
    """The runtime's own words for a refusal: the deepest cause's message, its lines joined into one (vLLM
    lists each kernel it tried and why it could not, one a line)."""
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {' '.join(lines)}"


LORA: list[Any] = []  # the adapter's LoRARequest, for every generate call, when the job names one


def _generate(llm: Any, prompts: list[list[int]], params: Any) -> Any:
    extra = {"lora_request": LORA[0]} if LORA else {}
    return llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False, **extra)


def _timed(llm: Any, prompts: list[list[int]], max_tokens: int) -> float:
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True)
    start = time.perf_counter()
    _generate(llm, prompts, params)
    return time.perf_counter() - start


def speed(llm: Any, job: dict[str, Any]) -> dict[str, Any]:
    """The same protocol as zoo.serving.speed's for transformers: prefill and first token from a one-token
    generation, decode rate from a longer one minus that, at batch 1 and batch ``len(batch)``."""
    one, batch, new = job["speed_prompt"], job["speed_batch"], job["new_tokens"]
    _timed(llm, [one], 4)  # warm-up: first-call allocations and kernel selection
    ttft = _timed(llm, [one], 1)
    full = _timed(llm, [one], new)
    ttft_b = _timed(llm, batch, 1)
    full_b = _timed(llm, batch, new)
    return {
        "prefill_tokens_per_s": len(one) / ttft,
        "ttft_s": ttft,
        "decode_tokens_per_s_b1": (new - 1) / max(full - ttft, 1e-9),
        "decode_tokens_per_s_batch": len(batch) * (new - 1) / max(full_b - ttft_b, 1e-9),
        "batch": len(batch),
        "new_tokens": new,
        "prompt_tokens": len(one),
    }


def _device() -> str:
    from vllm.platforms import current_platform

    return "cuda" if current_platform.is_cuda_alike() else str(current_platform.device_type)


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name(0))
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: resets VmHWM (peak RSS) to the current RSS; the engine runs in this process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _read_peak(device: str) -> int | None:
    if device == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def run_model(spec: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    from vllm import LLM, SamplingParams

    out: dict[str, Any] = {"model": spec["model"], "role": spec["role"]}
    device = _device()
    # a fixed KV-cache pool (the CPU build reads VLLM_CPU_KVCACHE_SPACE, set by zoo), so peaks compare
    pool = {"kv_cache_memory_bytes": job["kv_cache_bytes"]} if device == "cuda" else {}
    _reset_peak(device)
    start = time.perf_counter()
    try:
        llm = LLM(
            model=spec["model"],
            dtype=job["dtype"],
            max_model_len=job["max_model_len"],
            seed=0,
            enforce_eager=True,
            trust_remote_code=False,
            **pool,
            **spec.get("engine_args", {}),
        )
    except Exception as e:  # a format the runtime has no kernel for: its own reason, as a result
        traceback.print_exc()  # to stderr, which zoo shows with -vv
        out.update(status="refused", reason=_reason(e))
        return out
    out["load_s"] = time.perf_counter() - start
    LORA.clear()
    if spec.get("lora"):
        from vllm.lora.request import LoRARequest

        LORA.append(LoRARequest("adapter", 1, spec["lora"]))
    if job.get("logprob_ids"):
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        res = _generate(llm, [job["logprob_ids"]], params)[0]
        ids = job["logprob_ids"]
        out["prompt_logprobs"] = [None if entry is None else entry[ids[i]].logprob for i, entry in enumerate(res.prompt_logprobs)]
    if job.get("generate"):
        params = SamplingParams(temperature=0.0, max_tokens=job["generate_tokens"])
        res = _generate(llm, job["generate"], params)
        out["generated"] = [list(r.outputs[0].token_ids) for r in res]
    if spec.get("speed"):
        out["speed"] = speed(llm, job)
    out["peak_memory_bytes"] = _read_peak(device)
    out["status"] = "loads"
    del llm
    return out


def main() -> None:
    result = os.fdopen(os.dup(1), "w", buffering=1)  # the results channel
    os.dup2(2, 1)  # vLLM's and the kernels' prints go to stderr from here on
    sys.stdout = sys.stderr
    job = json.loads(sys.stdin.read())
    import vllm

    device = _device()
    result.write(
        json.dumps({"hello": True, "version": vllm.__version__, "device": device, "device_name": _device_name(device)}) + "\n"
    )
    for spec in job["models"]:
        result.write(json.dumps(run_model(spec, job)) + "\n")
    result.close()


if __name__ == "__main__":
    main()
