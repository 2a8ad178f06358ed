"""What a card tells someone about to deploy a variant: memory to serve it, and what it is fit for.

Serving memory is ``Variant.memory``: the published checkpoint's bytes (zoo's packed form for a packed
release, said as such) plus a bf16 KV cache of ``KV_CONTEXT`` tokens (or the checkpoint's
``max_position_embeddings`` when fewer) for one sequence; activations and the framework's own memory
come on top and are left out, as the text says.
Intended use follows the method's class: weight-only integer kernels, W8A8, research checkpoints of
the 1-2 bit methods (stored dequantized in 16-bit, or released in zoo's packed form), and LoRA
adapters on an NF4 base.

Which runtimes a card offers comes only from ``bench.json`` (``zoo bench``) of this very build: a runtime's
snippet appears when it served the build, with the device kind it served it on; a runtime that refused
is named with its own reason; without the record the card says the check has not run.

Exports (``exports``) are named only when the release carries them, that is, when ``zoo export`` proved them
exact against this very build (``zoo.export.release.current``: what ``zoo push`` publishes); the card then
gives their block types from ``export.json`` and a llama.cpp or mlx-lm snippet. It claims the weights, not a
runtime check: ``zoo bench`` does not run those runtimes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from zoo.recipe import Recipe
from zoo.records import BenchRecord, RuntimeCheck
from zoo.untrusted import markdown
from zoo.variant.model import KV_CONTEXT, Variant
from zoo.variant.text import fmt, packed
from zoo.workdir import Layout, size_text

__all__ = ["KV_CONTEXT", "axes", "exports", "intended_use", "method_class", "served", "serving_memory"]

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
    "research-packed": (
        "Research on ultra-low-bit quantization, reproducing the study's cell. This release is zoo's packed "
        "checkpoint: the method's codes at a fraction of the 16-bit size, decoded layer by layer as transformers "
        "runs it, so it serves in less memory but more slowly than the 16-bit base; not a production kernel."
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


def serving_memory(v: Variant) -> dict[str, Any] | None:
    """``Variant.memory`` as the card words it (None before a build); a packed release says "packed"."""
    m = v.memory
    if m is None:
        return None
    return {
        "weights_gb": m.weights_bytes / 1e9,
        "kv_gb": m.kv_bytes / 1e9 if m.kv_bytes is not None else None,
        "total_gb": m.total_bytes / 1e9,
        "weights_text": packed(size_text(m.weights_bytes), m.packed),
        "kv_text": size_text(m.kv_bytes) if m.kv_bytes is not None else None,
        "total_text": packed(size_text(m.total_bytes), m.packed),
        "context": m.context,
        "packed": m.packed,
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


def served(v: Variant, repo_id: str, context: int) -> dict[str, Any] | None:
    """What the card may say about runtimes, from this build's bench.json; None when it has not run. zoo bench
    loads model/: for a packed release that is the 16-bit form (``form``), which the card says."""
    bench = v.bench
    if bench is None:
        return None
    ok = list(v.served_by)
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
        "form": "16-bit" if v.packed else None,  # which form the runtimes served, when not the published one
    }


def intended_use(kind: str, serving: dict[str, Any] | None, packed_release: bool = False) -> str:
    """The class's text (a packed research release's own) plus the runtimes proven for this build (none
    claimed before ``zoo bench`` ran)."""
    text = INTENDED[f"{kind}-packed" if packed_release and f"{kind}-packed" in INTENDED else kind]
    if serving is None:
        return f"{text} Which serving runtimes run this build has not been checked (`zoo bench` has not run for it)."
    passed = ", ".join(p["where"] for p in serving["passed"]) or "none"
    refused = ", ".join(r["where"] for r in serving["refused"])
    form = " (its 16-bit form, what `zoo pull --unpack` writes; the packed form loads in transformers after `import zoo.packed`)"
    said = f"{text} Served in `zoo bench`'s check{form if serving.get('form') else ''} by: {passed}"
    return said + (f"; not by: {refused}." if refused else ".")


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "n/a"


def axes(bench: BenchRecord | None, quality: dict[str, Any] | None) -> dict[str, Any] | None:
    """The study's three axes side by side, each with its ratio to the 16-bit base measured the same way:
    quality from eval.json (``quality``: label, base, value), memory and speed per runtime from bench.json."""
    if bench is None:
        return None
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


EXPORT_TITLE = {"gguf": "GGUF", "mlx": "MLX"}


def exports(layout: Layout) -> list[dict[str, Any]]:
    """What the card says of each export the release carries (none: the card says nothing of exports): its
    folder in the repo, the file to load, the runtime, and its block types with how many tensors have each."""
    from zoo.export import FORMATS
    from zoo.export.release import current

    out = []
    for record in current(layout):
        fmt = record.format
        counts = Counter(record.types.values())
        types = ", ".join(f"`{t}`" + (f" ({n} tensors)" if len(counts) > 1 else "") for t, n in sorted(counts.items()))
        main = next((f.path for f in record.files if f.path.endswith(".gguf")), None) if fmt == "gguf" else None
        out.append({
            "format": fmt, "title": EXPORT_TITLE.get(fmt, fmt), "folder": fmt, "file": main,
            "runtime": FORMATS[fmt].runtime, "types": types,
            "tensors_text": f"{len(record.types)} quantized tensor{'' if len(record.types) == 1 else 's'}",
            "reader": markdown(str(record.exactness.get("reader", "")), 200),
        })  # fmt: skip
    return out
