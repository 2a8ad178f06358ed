"""The bench stage: the build in every serving runtime zoo can find, against transformers, and its speed.

Reads ``build.json`` (so it runs after ``zoo build``, beside or after ``zoo eval``) and writes
``bench.json``. transformers always runs, in this process: it is the reference. vLLM runs when a vLLM
python is found (``zoo.serving.vllm``), in a process of its own per model. Each runtime scores the same
held-out tokens (the first of the recipe's perplexity texts); a runtime serves the build when it loads,
generates and its perplexity on those tokens is within the scheme's tolerance of transformers'
(``zoo.serving.schemes``). With ``speed``, the variant and its 16-bit base are timed in each runtime
that serves the variant, in the same run, so their ratio is the cost or gain of quantization there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.device import resolve as resolve_device
from zoo.families import FAMILIES
from zoo.lock import stage_lock
from zoo.pipeline.options import RunOptions
from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, RuntimeCheck, Speed, check_recipe
from zoo.serving import schemes
from zoo.untrusted import plain
from zoo.workdir import Layout, sha256_file

log = logging.getLogger(__name__)
LOGPROB_TOKENS = 256  # held-out tokens each runtime scores
SPEED = {"prompt_tokens": 128, "new_tokens": 32, "batch": 16}
GENERATE_TOKENS = 16
REASON_CHARS = 500  # vLLM names every kernel it tried and why each cannot run the layer


@dataclass(frozen=True)
class BenchResult:
    name: str
    status: str  # "benchmarked" or "skipped"
    bench_json: Path
    record: BenchRecord


def cpu_name() -> str:
    try:
        names = [
            ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")
        ]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _job(recipe: Recipe, layout: Layout, recipe_dir: Path) -> dict[str, Any]:
    """The tokens every runtime gets, as ids (tokenized once, by the build's tokenizer)."""
    import transformers

    from zoo.card.context import PROMPT_HUB, PROMPT_TINY
    from zoo.data import DATASETS
    from zoo.data.calibration import token_ids
    from zoo.data.text import load_text

    tokenizer = transformers.AutoTokenizer.from_pretrained(layout.model, trust_remote_code=False)
    name = recipe.eval.perplexity[0] if recipe.eval.perplexity else "pydoc"
    ids = token_ids(load_text(name, DATASETS[name].eval_split).text, tokenizer)
    p, b = SPEED["prompt_tokens"], SPEED["batch"]
    while len(ids) < p * b:  # short texts wrap around: equal-length prompts need no padding
        ids = ids + ids
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt = PROMPT_TINY if recipe.base.builtin else PROMPT_HUB
    return {
        "dtype": "bfloat16",
        "max_model_len": max(LOGPROB_TOKENS, p) + SPEED["new_tokens"] + 8,
        "logprob_ids": bos + ids[: LOGPROB_TOKENS - len(bos)],
        "generate": [bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]],
        "generate_tokens": GENERATE_TOKENS,
        "speed_prompt": ids[:p],
        "speed_batch": [ids[i * p : (i + 1) * p] for i in range(b)],
        "new_tokens": SPEED["new_tokens"],
        "auto_class": FAMILIES.get(recipe.family).auto_class,
        "text": name,
    }


def _agreement(reference: list[float | None], other: list[float | None]) -> tuple[float, float]:
    if len(reference) != len(other):  # not the same tokens: no agreement to speak of
        return math.inf, math.inf
    pairs = [(a, b) for a, b in zip(reference, other, strict=True) if a is not None and b is not None]
    if not pairs:
        return math.inf, math.inf
    nll_ref = -sum(a for a, _ in pairs) / len(pairs)
    nll = -sum(b for _, b in pairs) / len(pairs)
    return abs(math.exp(nll - nll_ref) - 1.0), max(abs(a - b) for a, b in pairs)


def _speed(result: dict[str, Any], memory: str) -> Speed | None:
    s = result.get("speed")
    if not s:
        return None
    return Speed(**s, peak_memory_bytes=result.get("peak_memory_bytes"), memory=result.get("memory") or memory)


def _check(
    runtime: str,
    hello: dict[str, Any],
    results: list[dict[str, Any]],
    reference: list[float | None] | None,
    tolerance: float,
    decode: Any,
    memory: str,
) -> RuntimeCheck:
    variant = next(r for r in results if r["role"] == "variant")
    common = {
        "runtime": runtime,
        "version": hello.get("version"),
        "device": hello.get("device", "cpu"),
        "device_name": plain(hello.get("device_name") or "unknown", 120),
        "dtype": "bfloat16",
    }
    if variant.get("status") != "loads":
        return RuntimeCheck(
            **common,
            status=variant.get("status", "failed"),
            reason=plain(variant.get("reason") or "no reason given", REASON_CHARS),
        )
    diff, worst = (0.0, 0.0) if reference is None else _agreement(reference, variant.get("prompt_logprobs") or [])
    status = "serves" if diff <= tolerance else "disagrees"
    reason = None if status == "serves" else f"perplexity {diff:.2%} away from transformers' (tolerance {tolerance:.0%})"
    text = decode(variant["generated"][0]) if variant.get("generated") else None
    speeds = {r["role"]: s for r in results if r.get("status") == "loads" and (s := _speed(r, memory))}
    return RuntimeCheck(
        **common, status=status, reason=reason, ppl_rel_diff=None if reference is None else diff,
        max_logprob_diff=None if reference is None else worst, generated=plain(text) if text is not None else None,
        speed=speeds if status == "serves" else {},
    )  # fmt: skip


def settings(device: str, speed: bool, vllm_python: str | None) -> dict[str, Any]:
    """What decides the record: a vLLM that appears later, another device or speed on re-runs the stage."""
    from zoo.machine import package_versions

    return {
        "device": device,
        "speed": speed,
        "runtimes": ["transformers", *(["vllm"] if vllm_python else [])],
        "protocol": {"logprob_tokens": LOGPROB_TOKENS, "generate_tokens": GENERATE_TOKENS, **SPEED},
        "versions": package_versions(("torch", "transformers", "compressed-tensors")),
    }


def bench_stage(recipe: Recipe, layout: Layout, options: RunOptions) -> BenchResult:
    """Check (and with ``options.speed`` time) the build of ``recipe`` in every runtime found; write bench.json
    (atomic) under the lock."""
    with stage_lock(layout, "bench", options.wait):
        from zoo.serving import vllm_process as vllm

        build = BuildRecord.checked(layout)  # a truncated or altered checkpoint stops here, not in a runtime
        check_recipe(recipe, build, layout.folder)
        options = options.but(device=resolve_device(options.device))
        vllm_python = vllm.python()
        spec = settings(options.device, options.speed, vllm_python)
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        build_sha = sha256_file(layout.build_json)
        done = None if options.force else BenchRecord.read(layout)
        if done and done.build_sha256 == build_sha and done.settings_sha256 == key:
            log.info("%s: already benchmarked (%s), skipping; --force re-runs", recipe.name, layout.bench_json)
            return BenchResult(recipe.name, "skipped", layout.bench_json, done)
        checks, logprob_tokens = _measure(recipe, layout, options, vllm_python)
        tolerance, why = schemes.tolerance(recipe)
        record = BenchRecord(
            name=recipe.name,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_sha256=build_sha,
            settings_sha256=key,
            settings=spec,
            scheme=schemes.scheme(recipe),
            tolerance=tolerance,
            tolerance_why=why,
            logprob_tokens=logprob_tokens,
            runtimes=checks,
        )
        record.write(layout)
        return BenchResult(recipe.name, "benchmarked", layout.bench_json, record)


def bench(
    recipe: Recipe,
    workdir: Path,
    recipe_dir: Path,
    device: str = "auto",
    force: bool = False,
    speed: bool = True,
    wait: bool = False,
) -> BenchResult:
    """``bench_stage`` by keywords, for scripts and tests that name a workdir rather than a layout."""
    options = RunOptions(recipes=recipe_dir, device=device, force=force, speed=speed, wait=wait)
    return bench_stage(recipe, Layout(workdir, recipe.name), options)


def _measure(
    recipe: Recipe, layout: Layout, options: RunOptions, vllm_python: str | None
) -> tuple[tuple[RuntimeCheck, ...], int]:
    """Each runtime's check of the build (transformers first: the reference), and how many tokens each scored."""
    import transformers

    from zoo.loader import resolve
    from zoo.machine import package_versions
    from zoo.serving import hf

    dev, speed = options.device, options.speed
    job = _job(recipe, layout, options.recipes)
    tokenizer = transformers.AutoTokenizer.from_pretrained(layout.model, trust_remote_code=False)
    base = resolve(recipe, options.recipes).path
    adapter = recipe.format == "adapter"
    tolerance, _ = schemes.tolerance(recipe)
    variant = {"model": str(layout.model), "role": "variant", "speed": speed, "adapter_base": base if adapter else None}
    log.info("%s: transformers on %s", recipe.name, dev)
    ours = [hf.run_model(variant, job, dev)]
    if speed and ours[0].get("status") == "loads":
        ours.append(
            hf.run_model({"model": str(base), "role": "base", "speed": True}, {**job, "logprob_ids": [], "generate": []}, dev)
        )
    hello = {"version": package_versions(("transformers",))["transformers"], "device": dev,
             "device_name": cpu_name() if dev == "cpu" else _gpu_name()}  # fmt: skip
    reference = ours[0].get("prompt_logprobs")
    checks = [_check("transformers", hello, ours, None, tolerance, tokenizer.decode, hf.HOST_MEMORY)]
    if vllm_python is not None:
        checks.append(_vllm(recipe, vllm_python, job, variant, base, speed, reference, tolerance, tokenizer.decode))
    return tuple(checks), len(job["logprob_ids"])


def _vllm(
    recipe: Recipe,
    vllm_python: str,
    job: dict[str, Any],
    variant: dict[str, Any],
    base: Path,
    speed: bool,
    reference: list[float | None] | None,
    tolerance: float,
    decode: Any,
) -> RuntimeCheck:
    """The variant in vLLM (an adapter as vLLM serves one: its 16-bit base with LoRA enabled), then, when it
    serves and speed is on, the base in a fresh process, so neither model's memory counts in the other's peak."""
    from zoo.serving import vllm_process as vllm

    log.info("%s: vLLM (%s)", recipe.name, vllm_python)
    spec = {"model": variant["model"], "role": "variant", "speed": speed}
    if recipe.format == "adapter":
        spec = {**spec, "model": str(base), "lora": variant["model"], "lora_rank": getattr(recipe.params, "rank", 8),
                "engine_args": {"quantization": "bitsandbytes", "enable_lora": True,
                                "max_lora_rank": max(8, getattr(recipe.params, "rank", 8))}}  # fmt: skip
    plain_job = {k: v for k, v in job.items() if k not in ("auto_class", "text")}
    hello, results = vllm.run(vllm_python, {**plain_job, "models": [spec]})
    memory = "accelerator: peak allocated in vLLM's process, a fixed 1 GiB KV-cache pool included"
    if hello.get("device") != "cuda":
        memory = "host: peak RSS of vLLM's process (Python, the runtime and a fixed 1 GiB KV-cache pool included)"
    first = _check("vllm", hello, results, reference, tolerance, decode, memory)
    if not (speed and first.serves):
        return first
    _, more = vllm.run(vllm_python, {**plain_job, "logprob_ids": [], "generate": [], "models": [
        {"model": str(base), "role": "base", "speed": True}]})  # fmt: skip
    for r in more:
        r.setdefault("memory", memory)
    return _check("vllm", hello, results + more, reference, tolerance, decode, memory)


def _gpu_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0))
