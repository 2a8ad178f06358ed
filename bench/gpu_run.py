"""bench/gpu.py's in-model measurements, each run as its own process so the time budget can stop it:

  python bench/gpu_run.py eval JOB.json RESULT.json    zoo perplexity vs lm-eval rolling loglikelihood
  python bench/gpu_run.py load JOB.json RESULT.json    one checkpoint: serve (prefill / decode) and quality

eval: the 16-bit model scores the same token ids both ways at each batch size (zoo cuts disjoint
`seqlen` windows, GPTQ's protocol; lm-eval's HF backend rolls windows of `max_length`); throughput is
tokens scored per wall second (CUDA synchronised). vLLM's lm-eval backend joins where importable on CUDA.
load: the checkpoint as transformers loads it (compressed-tensors formats decompress or run compressed as
transformers decides, which is what a user gets), prefill tokens/s of one forward over a batch of
prompts, decode tokens/s of greedy generation past them, peak GPU memory; and for quality, its logits
on a fixed batch against the 16-bit model's (relative Frobenius error, fp32).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _load(path: str, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32  # as zoo eval loads
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()


def eval_job(job: dict[str, Any]) -> dict[str, Any]:
    import importlib.util

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from zoo.data.calibration import token_ids
    from zoo.evaluation.perplexity import perplexity

    device, seqlen = job["device"], job["seqlen"]
    model = _load(job["model"], device)
    tok = AutoTokenizer.from_pretrained(job["model"])
    ids = token_ids(Path(job["text"]).read_text(), tok)[: job["windows"] * seqlen]
    text = tok.decode(ids)
    rows = []
    for bs in job["batches"]:
        _sync(device)
        t = time.perf_counter()
        p = perplexity(model, ids, seqlen, device=device, batch_size=bs)
        _sync(device)
        sec = time.perf_counter() - t
        rows.append({"side": "zoo perplexity", "backend": "hf", "batch": bs, "tokens": p.windows * (seqlen - 1),
                     "seconds": sec, "tokens_per_s": p.windows * (seqlen - 1) / sec, "ppl": p.value})  # fmt: skip
    for bs in job["batches"]:
        lm = HFLM(pretrained=model, tokenizer=tok, batch_size=bs, max_length=seqlen, device=device)
        scored = len(lm.tok_encode(text))
        req = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
        _sync(device)
        t = time.perf_counter()
        with torch.inference_mode():
            (ll,) = lm.loglikelihood_rolling([req], disable_tqdm=True)
        _sync(device)
        sec = time.perf_counter() - t
        rows.append({"side": "lm-eval rolling", "backend": "hf", "batch": bs, "tokens": scored, "seconds": sec,
                     "tokens_per_s": scored / sec, "ppl": math.exp(-ll / scored)})  # fmt: skip
    if device == "cuda" and importlib.util.find_spec("vllm") is not None:
        del model
        torch.cuda.empty_cache()
        from lm_eval.models.vllm_causallms import VLLM

        lm = VLLM(pretrained=job["model"], max_length=seqlen, batch_size="auto", gpu_memory_utilization=0.8)
        req = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
        t = time.perf_counter()
        (ll,) = lm.loglikelihood_rolling([req], disable_tqdm=True)
        sec = time.perf_counter() - t
        scored = len(tok(text, add_special_tokens=False)["input_ids"])
        rows.append({"side": "lm-eval rolling", "backend": "vllm", "batch": "auto", "tokens": scored, "seconds": sec,
                     "tokens_per_s": scored / sec, "ppl": math.exp(-ll / scored)})  # fmt: skip
    return {"rows": rows}


def _serve(model: Any, device: str, batch: int, prompt: int, new: int, vocab: int) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(batch)
    x = torch.randint(0, vocab, (batch, prompt), generator=gen).to(device)
    mask = torch.ones_like(x)
    with torch.inference_mode():
        model(input_ids=x[:, :8])  # warm-up: kernels, allocator
        _sync(device)
        t = time.perf_counter()
        model(input_ids=x)
        _sync(device)
        prefill = time.perf_counter() - t
        t = time.perf_counter()
        model.generate(input_ids=x, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                       pad_token_id=0)  # fmt: skip
        _sync(device)
        total = time.perf_counter() - t
    decode = max(total - prefill, 1e-9)
    return {"batch": batch, "prefill_tokens_per_s": batch * prompt / prefill, "decode_tokens_per_s": batch * (new - 1) / decode}


def _vllm_serve(path: str, batches: list[int], prompt: int, new: int, vocab: int) -> list[dict[str, Any]]:
    import torch
    from vllm import LLM, SamplingParams

    llm = LLM(model=path, max_model_len=prompt + new + 8, gpu_memory_utilization=0.8, enforce_eager=False)
    rows = []
    for batch in batches:
        gen = torch.Generator().manual_seed(batch)
        prompts = [{"prompt_token_ids": torch.randint(0, vocab, (prompt,), generator=gen).tolist()} for _ in range(batch)]
        one = SamplingParams(max_tokens=1, ignore_eos=True)
        llm.generate(prompts, one, use_tqdm=False)  # warm-up
        t = time.perf_counter()
        llm.generate(prompts, one, use_tqdm=False)
        prefill = time.perf_counter() - t
        t = time.perf_counter()
        llm.generate(prompts, SamplingParams(max_tokens=new, min_tokens=new, ignore_eos=True), use_tqdm=False)
        decode = max(time.perf_counter() - t - prefill, 1e-9)
        rows.append({"backend": "vllm", "batch": batch, "prefill_tokens_per_s": batch * prompt / prefill,
                     "decode_tokens_per_s": batch * (new - 1) / decode})  # fmt: skip
    return rows


def load_job(job: dict[str, Any]) -> dict[str, Any]:
    import importlib.util

    import torch

    device = job["device"]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    model = _load(job["model"], device)
    out: dict[str, Any] = {"load_s": time.perf_counter() - t, "serve": [], "rel_error": None}
    if job.get("logits"):  # quality: the fixed batch's logits, saved by the 16-bit run, compared by the others
        x = torch.randint(0, job["vocab"], tuple(job["quality_batch"]), generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            logits = model(input_ids=x.to(device)).logits.float().cpu()
        ref = Path(job["logits"])
        if job.get("reference"):
            torch.save(logits, ref)
            out["rel_error"] = 0.0
        else:
            base = torch.load(ref)
            out["rel_error"] = float((logits - base).norm() / base.norm())
    for batch in job.get("serve_batches", []):
        out["serve"].append({"backend": "transformers", **_serve(model, device, batch, job["prompt"], job["new"], job["vocab"])})
    out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
    if job.get("serve_batches") and device == "cuda" and importlib.util.find_spec("vllm") is not None:
        del model
        torch.cuda.empty_cache()
        out["serve"] += _vllm_serve(job["model"], job["serve_batches"], job["prompt"], job["new"], job["vocab"])
    return out


def main() -> None:
    part, job_file, result = sys.argv[1:4]
    job = json.loads(Path(job_file).read_text())
    import torch

    torch.set_grad_enabled(False)
    out = eval_job(job) if part == "eval" else load_job(job)
    Path(result).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
