"""transformers as a serving runtime: the reference every other runtime is compared with.

A model is loaded the way the card tells users to (an adapter on its NF4 base through peft), in bf16,
and measured with the same protocol the vLLM script uses (``vllm_child.speed``): time to first token
from a one-token generation, prefill rate = prompt tokens / that time, decode rate = further tokens /
the rest of a longer generation, at batch 1 and a batch of equal-length prompts (no padding). Peak
memory is the accelerator's allocated peak on CUDA, and the process's peak RSS on a CPU (VmHWM, reset
before each model; it includes Python and torch themselves, as the record says).
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
HOST_MEMORY = "host: peak RSS of the whole process (Python and the runtime included)"
GPU_MEMORY = "accelerator: peak allocated by the runtime's tensors"


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        log.debug("cannot reset the peak RSS; the host figure is the process's peak so far")


def read_peak(device: str) -> int | None:
    if device == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def load(model_dir: Path, adapter_base: Path | None, auto_class: str, device: str) -> Any:
    """``model_dir`` in bf16 on ``device``; with ``adapter_base``, the adapter in ``model_dir`` on that NF4 base."""
    import torch
    import transformers

    if adapter_base is not None:
        from zoo.lora.load import load as load_adapter

        return load_adapter(model_dir, adapter_base, device, torch.bfloat16).eval()
    auto = getattr(transformers, auto_class)
    return auto.from_pretrained(model_dir, dtype=torch.bfloat16, trust_remote_code=False).to(device).eval()


def prompt_logprobs(model: Any, ids: list[int], device: str) -> list[float | None]:
    """Each token's log-probability given the ones before it (None for the first, as vLLM reports it)."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids], device=device)).logits[0, :-1].float()
    lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids[1:], device=device)[:, None])[:, 0]
    return [None, *(float(x) for x in lp.cpu())]


def _generate(model: Any, prompts: list[list[int]], new: int, device: str, eos: bool = False) -> tuple[float, Any]:
    import torch

    x = torch.tensor(prompts, device=device)
    fixed = {} if eos else {"min_new_tokens": new}
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new, do_sample=False,
            pad_token_id=model.generation_config.eos_token_id or 0, **fixed,
        )  # fmt: skip
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out[:, x.shape[1] :]


def speed(model: Any, job: dict[str, Any], device: str) -> dict[str, Any]:
    one, batch, new = job["speed_prompt"], job["speed_batch"], job["new_tokens"]
    _generate(model, [one], 4, device)  # warm-up
    ttft = _generate(model, [one], 1, device)[0]
    full = _generate(model, [one], new, device)[0]
    ttft_b = _generate(model, batch, 1, device)[0]
    full_b = _generate(model, batch, new, device)[0]
    return {
        "prefill_tokens_per_s": len(one) / ttft,
        "ttft_s": ttft,
        "decode_tokens_per_s_b1": (new - 1) / max(full - ttft, 1e-9),
        "decode_tokens_per_s_batch": len(batch) * (new - 1) / max(full_b - ttft_b, 1e-9),
        "batch": len(batch),
        "new_tokens": new,
        "prompt_tokens": len(one),
    }


def run_model(spec: dict[str, Any], job: dict[str, Any], device: str) -> dict[str, Any]:
    """One model, as ``vllm_child.run_model`` reports it: status, log-probs, generations, speed, memory."""
    out: dict[str, Any] = {"model": str(spec["model"]), "role": spec["role"]}
    gc.collect()
    reset_peak(device)
    start = time.perf_counter()
    try:
        model = load(Path(spec["model"]), spec.get("adapter_base"), job["auto_class"], device)
    except Exception as e:  # noqa: BLE001 - a format transformers cannot load is a result, not a crash
        out.update(
            status="refused", reason=f"{type(e).__name__}: {' '.join(ln.strip() for ln in str(e).splitlines() if ln.strip())}"
        )
        return out
    out["load_s"] = time.perf_counter() - start
    if job.get("logprob_ids"):
        out["prompt_logprobs"] = prompt_logprobs(model, job["logprob_ids"], device)
    if job.get("generate"):
        out["generated"] = [
            _generate(model, [p], job["generate_tokens"], device, eos=True)[1][0].tolist() for p in job["generate"]
        ]
    if spec.get("speed"):
        out["speed"] = speed(model, job, device)
    out["peak_memory_bytes"] = read_peak(device)
    out["memory"] = GPU_MEMORY if device == "cuda" else HOST_MEMORY
    out["status"] = "loads"
    del model
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
    return out
