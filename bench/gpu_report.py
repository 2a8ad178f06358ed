"""bench/gpu.py's report: run metadata, the Markdown tables, the PASS / FAIL / n.a. targets, and the
docs block the bench writes itself (between `<!-- bench:gpu -->` and `<!-- /bench:gpu -->`)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:gpu -->", "<!-- /bench:gpu -->"
VERSIONS = ("torch", "transformers", "llmcompressor", "compressed-tensors", "lm_eval", "datasets", "vllm", "zoo")
WALL_MAX, GPU_MEM_MAX, GPTQ_8B_S, PPL_MIN = 1.05, 1.1, 300.0, 1.5


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    if device == "cuda":
        import torch

        text = f"{torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB); {text}"
    return text


def meta(args: Any, device: str, shape: Any, weight_bytes: int, made_s: float, size: dict[str, Any],
         total_s: float) -> dict[str, Any]:  # fmt: skip
    from zoo import __version__

    versions = {n: _version(n) for n in VERSIONS}
    versions["zoo"] = versions["zoo"] or __version__
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/gpu.py " + shlex.join(sys.argv[1:]),
        "device": device,
        "machine": _machine(device),
        "python": platform.python_version(),
        "versions": versions,
        "shape": shape.to_json(),
        "layers": args.layers,
        "params": shape.params(args.layers),
        "weight_bytes": weight_bytes,
        "model_written_s": round(made_s, 3),
        "sizes": size,
        "minutes": args.minutes,
        "total_s": round(total_s, 3),
    }


def _n(v: Any, scale: float = 1.0, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v / scale, fmt)


def _pair(rows: list[dict[str, Any]], scheme: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    got = {r["side"]: r for r in rows if r["scheme"] == scheme and r.get("status") == "ok"}
    return (got["zoo"], got["oneshot"]) if {"zoo", "oneshot"} <= set(got) else None


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m, parts = result["meta"], result["parts"]
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, ok: bool | None, detail: str) -> None:
        verdict = "n.a." if ok is None else ("PASS" if ok else "FAIL")
        out.append({"target": name, "result": verdict, "value": value, "limit": limit, "detail": detail})

    build = parts.get("build", {}).get("rows", [])
    for scheme in dict.fromkeys(r["scheme"] for r in build):
        pair = _pair(build, scheme)
        if pair is None:
            add(f"{scheme}: zoo wall <= {WALL_MAX}x oneshot", None, WALL_MAX, None, "both sides did not finish")
            continue
        z, o = pair
        wall = z["wall_s"] / o["wall_s"]
        add(f"{scheme}: zoo wall <= {WALL_MAX}x oneshot", wall, WALL_MAX, wall <= WALL_MAX, f"{wall:.2f}x on {m['device']}")
        zg, og = z.get("peak_gpu_bytes"), o.get("peak_gpu_bytes")
        mem = zg / og if zg and og else None
        fits = None if mem is None else mem <= GPU_MEM_MAX
        detail = "no GPU" if mem is None else f"{mem:.2f}x"
        add(f"{scheme}: zoo peak GPU memory <= {GPU_MEM_MAX}x oneshot", mem, GPU_MEM_MAX, fits, detail)
    zoo_gptq = next((r for r in build if r["scheme"] == "gptq" and r["side"] == "zoo" and r.get("status") == "ok"), None)
    full = m["shape"]["name"] == "8b" and m["device"] == "cuda"
    if zoo_gptq and full:
        t = zoo_gptq["timings_s"]
        total = t["total"] - t["quantize"] + t["quantize"] * m["shape"]["full_layers"] / m["layers"]
        how = "measured" if m["layers"] == m["shape"]["full_layers"] else f"extrapolated from {m['layers']} layers"
        add("8B GPTQ W4 g128 under 5 min", total, GPTQ_8B_S, total < GPTQ_8B_S, f"{total:.0f} s, {how}")
    else:
        add("8B GPTQ W4 g128 under 5 min", None, GPTQ_8B_S, None, "needs --shape 8b (full width), --device cuda and a gptq build")
    rows = [r for r in parts.get("eval", {}).get("rows", [])]
    zoo_best = max((r["tokens_per_s"] for r in rows if r["side"] == "zoo perplexity"), default=None)
    lm_best = max((r["tokens_per_s"] for r in rows if r["side"] == "lm-eval rolling"), default=None)
    ratio = zoo_best / lm_best if zoo_best and lm_best else None
    add(f"zoo perplexity >= {PPL_MIN}x lm-eval tokens/s", ratio, PPL_MIN, None if ratio is None else ratio >= PPL_MIN,
        "eval did not run" if ratio is None else f"{ratio:.2f}x at each side's best batch, {m['device']}")  # fmt: skip
    return out


def render(result: dict[str, Any]) -> str:
    m, parts, mb = result["meta"], result["parts"], 1e6
    s = m["shape"]
    lines = [
        f"- model: LLaMA-3-{s['name']} configuration (hidden {s['hidden']}, intermediate {s['intermediate']}, heads {s['heads']}/"
        f"{s['kv_heads']}, vocab {s['vocab']}), {m['layers']} of {s['full_layers']} layers, random weights, "
        f"{m['weight_bytes'] / 1e9:.2f} GB bf16; calibration {m['sizes']['samples']} x {m['sizes']['seqlen']} random tokens",
        f"- run: {m['date']}; {m['device']}: {m['machine']}; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"- command: `{m['command']}`: {m['total_s']:.0f} s of a {m['minutes']:g}-minute budget",
        "",
    ]

    def table(title: str, head: list[str], rows: list[list[str]]) -> None:
        lines.extend([f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)])
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
        lines.append("")

    if "build" in parts:
        table("build: zoo build vs plain llm-compressor oneshot (each its own process)",
              ["scheme", "side", "wall s", "peak GPU MB", "peak RSS MB", "output MB", "status"],
              [[r["scheme"], r["side"], _n(r.get("wall_s")), _n(r.get("peak_gpu_bytes"), mb, ".0f"),
                _n(r.get("peak_rss_bytes"), mb, ".0f"), _n(r.get("output_bytes"), mb), r["status"]]
               for r in parts["build"]["rows"]])  # fmt: skip
    if "eval" in parts:
        table("eval: perplexity throughput, 16-bit model", ["side", "backend", "batch", "tokens", "s", "tokens/s", "ppl"],
              [[r["side"], r["backend"], str(r["batch"]), str(r["tokens"]), _n(r["seconds"], fmt=".2f"),
                _n(r["tokens_per_s"], fmt=".0f"), _n(r["ppl"], fmt=".1f")] for r in parts["eval"]["rows"]]
              or [["-", "-", "-", "-", "-", "-", parts["eval"].get("process", {}).get("status", "not run")]])  # fmt: skip
    if "serve" in parts:
        table("serve: prefill / decode tokens/s", ["format", "backend", "batch", "prefill tok/s", "decode tok/s", "peak GPU MB",
              "peak RSS MB", "status"],
              [[r["format"], s.get("backend", "-"), str(s.get("batch", "-")), _n(s.get("prefill_tokens_per_s"), fmt=".0f"),
                _n(s.get("decode_tokens_per_s"), fmt=".0f"), _n(r.get("peak_gpu_bytes"), mb, ".0f"),
                _n(r.get("peak_rss_bytes"), mb, ".0f"), r["status"]]
               for r in parts["serve"]["rows"] for s in (r.get("serve") or [{}])])  # fmt: skip
    if "quality" in parts:
        table("quality: logits on a fixed batch vs the 16-bit model", ["format", "relative error", "status"],
              [[r["format"], _n(r.get("rel_error"), fmt=".4f"), r["status"]] for r in parts["quality"]["rows"]])  # fmt: skip
    if "native" in parts:
        table("native: zoo's own methods, quantize stage per decoder layer", ["method", "quantize s", "s per layer",
              f"x {s['full_layers']} layers", "status"],
              [[r["method"], _n((r.get("timings_s") or {}).get("quantize")), _n(r.get("per_layer_s"), fmt=".2f"),
                _n(r["per_layer_s"] * s["full_layers"] if "per_layer_s" in r else None, fmt=".0f"), r["status"]]
               for r in parts["native"]["rows"]])  # fmt: skip
    if "lora" in parts:
        table("lora: LoRA steps on the NF4 base", ["method", "steps", "train s", "s per step", "status"],
              [[r["method"], str(r.get("steps", "-")), _n(r.get("train_s")), _n(r.get("per_step_s"), fmt=".3f"), r["status"]]
               for r in parts["lora"]["rows"]])  # fmt: skip
    lines.append("**targets**")
    lines.append("")
    lines.extend(f"- {t['result']} {t['target']}: {t['detail']}" for t in result["targets"])
    return "\n".join(lines) + "\n"


def doc_block(path: Path, text: str) -> None:
    """Replace what stands between the markers, leaving the rest of the file as it was: bench/report.py's
    one marker writer (a missing, doubled or misordered marker changes nothing), then an atomic rename."""
    from report import ReportError, replace_block

    try:
        doc = replace_block(path.read_text(), "gpu", text, str(path))
    except ReportError as e:
        raise SystemExit(f"error: {e}") from None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(doc)
    tmp.replace(path)
