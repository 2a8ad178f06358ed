"""What a card tells someone about to deploy a variant: memory to serve it, and what it is fit for.

Serving memory is the checkpoint's bytes on disk (what loads onto the accelerator) plus a bf16 KV
cache of ``KV_CONTEXT`` tokens (or the checkpoint's ``max_position_embeddings`` when fewer) for one
sequence, from the checkpoint's own config (layers, KV heads, head size); activations and the
framework's own memory come on top and are left out, as the text says.
Intended use follows the method's class: weight-only integer kernels, W8A8, research checkpoints of
the 1-2 bit methods (stored dequantized in 16-bit), and LoRA adapters on an NF4 base.

Which runtimes a card offers comes only from ``bench.json`` (``zoo bench``) of this very build: a runtime's
snippet appears when it served the build, with the device kind it served it on; a runtime that refused
is named with its own reason; without the record the card says the check has not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, RuntimeCheck
from zoo.untrusted import markdown

KV_CONTEXT = 8192

INTENDED = {
    "weight-only": (
        "Serving with less accelerator memory than the 16-bit base: integer weights with 16-bit activations. Check "
        "the evaluation above on your own tasks before replacing the base; low bit widths lose more on reasoning and "
        "long-context tasks than perplexity shows."
    ),
    "w8a8": (
        "Serving where 8-bit (or lower) activation kernels are available; integer activations make the "
        "accuracy depend more on the input distribution than weight-only quantization does."
    ),
    "research": (
        "Research on ultra-low-bit quantization, reproducing the study's cell. The weights are stored "
        "dequantized in 16-bit: no memory or speed benefit, and not meant for deployment."
    ),
    "adapter": (
        "Fine-tuned use on instruction-style prompts, with the adapter on its NF4 base; the fine-tuning data "
        "(named above) shapes its behaviour, and knowledge benchmarks can drop below plain NF4's."
    ),
}


def method_class(recipe: Recipe) -> str:
    if recipe.format == "adapter":
        return "adapter"
    if recipe.format == "fake":  # zoo's own 1-2 bit methods: quantized, then stored dequantized in 16-bit
        return "research"
    return "w8a8" if recipe.activations else "weight-only"


def _text_config(model_dir: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    text = config.get("text_config", config) if isinstance(config, dict) else None
    return text if isinstance(text, dict) else None


def serving_memory(recipe: Recipe, build: BuildRecord | None, model_dir: Path) -> dict[str, Any] | None:
    """Weights and KV-cache bytes to serve one sequence of ``KV_CONTEXT`` tokens; None before a build.
    An adapter's weights are its NF4 base (parameters x the measured bits per weight) plus itself; its
    config is the base's, which the adapter folder does not hold, so its KV cache is left out."""
    if build is None:
        return None
    text = _text_config(model_dir) or {}
    layers, heads = text.get("num_hidden_layers"), text.get("num_attention_heads")
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or (text["hidden_size"] // heads if heads and text.get("hidden_size") else None)
    positions = text.get("max_position_embeddings")
    # the context the snippet serves and the KV cache is sized for: never past what the checkpoint was built for
    context = min(KV_CONTEXT, positions) if isinstance(positions, int) and positions > 0 else KV_CONTEXT
    kv = 2 * layers * kv_heads * head_dim * 2 * context if layers and kv_heads and head_dim else None
    weights = build.total_bytes
    if recipe.format == "adapter":
        weights += int(recipe.base.parameters * 1e9 * float(build.method.get("bits_per_weight") or 4.127) / 8)
    from zoo.workdir import size_text

    return {
        "weights_gb": weights / 1e9,
        "kv_gb": kv / 1e9 if kv is not None else None,
        "total_gb": (weights + (kv or 0)) / 1e9,
        "weights_text": size_text(weights),
        "kv_text": size_text(kv) if kv is not None else None,
        "total_text": size_text(weights + (kv or 0)),
        "context": context,
    }


RUNTIME_TITLE = {"transformers": "transformers", "vllm": "vLLM"}


def _where(c: RuntimeCheck) -> str:
    name = f"{RUNTIME_TITLE.get(c.runtime, c.runtime)} {c.version or ''}".strip()
    return f"{name} on {'GPU' if c.device == 'cuda' else 'CPU'}"


def vllm_command(repo_id: str, device: str, context: int) -> str:
    """The command that starts vLLM's OpenAI-compatible server: the CPU package has no working ``vllm serve``."""
    if device == "cuda":
        return f"vllm serve {repo_id} --max-model-len {context}"
    return f"python -m vllm.entrypoints.openai.api_server --model {repo_id} --max-model-len {context}"


def served(bench: BenchRecord | None, repo_id: str, context: int) -> dict[str, Any] | None:
    """What the card may say about runtimes, from this build's bench.json; None when it has not run."""
    if bench is None:
        return None
    ok = [c for c in bench.runtimes if c.serves]
    vllm = next((c for c in ok if c.runtime == "vllm"), None)
    return {
        "scheme": bench.scheme,
        "tolerance": f"{bench.tolerance:.0%}",
        "tokens": bench.logprob_tokens,
        "passed": [
            {"runtime": RUNTIME_TITLE.get(c.runtime, c.runtime), "where": _where(c), "device": c.device,
             "diff": None if c.ppl_rel_diff is None else f"{c.ppl_rel_diff:.2%}"}
            for c in ok
        ],  # fmt: skip
        "refused": [
            {"runtime": RUNTIME_TITLE.get(c.runtime, c.runtime), "where": _where(c), "status": c.status,
             "reason": markdown(c.reason or "no reason given", 500)}
            for c in bench.runtimes if not c.serves
        ],  # fmt: skip
        "vllm": {"where": _where(vllm), "device": vllm.device, "command": vllm_command(repo_id, vllm.device, context)}
        if vllm
        else None,
        "vllm_checked": any(c.runtime == "vllm" for c in bench.runtimes),
        "transformers": any(c.runtime == "transformers" for c in ok),
    }


def intended_use(kind: str, serving: dict[str, Any] | None) -> str:
    """The class's text plus the runtimes proven for this build (none claimed before ``zoo bench`` ran)."""
    text = INTENDED[kind]
    if serving is None:
        return f"{text} Which serving runtimes run this build has not been checked (`zoo bench` has not run for it)."
    passed = ", ".join(p["where"] for p in serving["passed"]) or "none"
    refused = ", ".join(r["where"] for r in serving["refused"])
    return f"{text} Served in `zoo bench`'s check by: {passed}" + (f"; not by: {refused}." if refused else ".")


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "n/a"


def axes(bench: BenchRecord | None, quality: dict[str, Any] | None) -> dict[str, Any] | None:
    """The study's three axes side by side, each with its ratio to the 16-bit base measured the same way:
    quality from eval.json (``quality``: label, base, value), memory and speed per runtime from bench.json."""
    if bench is None:
        return None
    from zoo.card.common import fmt
    from zoo.workdir import size_text

    rows: list[dict[str, str]] = []
    if quality:
        rows.append({"axis": "Quality", "measure": quality["label"], "runtime": "transformers (`zoo eval`)",
                     "base": fmt(quality["base"]), "value": fmt(quality["value"]),
                     "ratio": _ratio(quality["value"], quality["base"])})  # fmt: skip
    devices = set()
    for c in bench.runtimes:
        v, b = c.speed.get("variant"), c.speed.get("base")
        if v is None or b is None:
            continue
        devices.add((c.device, c.device_name))
        where = _where(c)
        if v.peak_memory_bytes and b.peak_memory_bytes:
            kind = "peak accelerator memory" if v.memory.startswith("accelerator") else "peak host memory (RSS)"
            mb, mv = b.peak_memory_bytes, v.peak_memory_bytes
            rows.append({"axis": "Memory", "measure": kind, "runtime": where, "base": size_text(mb), "value": size_text(mv),
                         "ratio": _ratio(mv, mb)})  # fmt: skip
        for label, key in (
            (f"prefill tokens/s ({v.prompt_tokens}-token prompt)", "prefill_tokens_per_s"),
            ("decode tokens/s, batch 1", "decode_tokens_per_s_b1"),
            (f"decode tokens/s, batch {v.batch}", "decode_tokens_per_s_batch"),
            ("time to first token (s)", "ttft_s"),
        ):
            x, y = getattr(v, key), getattr(b, key)
            rows.append({"axis": "Speed", "measure": label, "runtime": where, "base": fmt(y), "value": fmt(x),
                         "ratio": _ratio(x, y)})  # fmt: skip
    cpu = sorted(markdown(name, 120) for device, name in devices if device != "cuda")
    gpu = sorted(markdown(name, 120) for device, name in devices if device == "cuda")
    return {"rows": rows, "cpu": cpu, "gpu": gpu, "measured": any(r["axis"] != "Quality" for r in rows)}
