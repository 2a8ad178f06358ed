"""Host memory of `zoo build --host-memory X` against model size: does RSS stay O(one decoder layer)?
And of `zoo eval`: under a cap smaller than the model, is the peak within the cap + one layer + a fixed
overhead, against the same eval unconstrained?

Run: python bench/memory.py [--sizes 0.5 2 4] [--methods rtn gptq] [--host-memory 0.5] [--eval-size 2]
[--write-docs]. Not a test: it prints figures (and one JSON line); --write-docs also writes one table per
method and the eval table into docs/performance.md (bench/report.py).

For each size, a random-weight LLaMA-3-shaped model (hidden 2048, intermediate 8192, 16 heads / 4 KV
heads as LLaMA-3's GQA ratio, 122 MB of bf16 per decoder layer; the depth sets the size) is written
layer by layer, one safetensors shard per layer, so it is never whole in this process's memory. Each is
built with `zoo build --host-memory X` in its own process (RTN, and GPTQ with 4 x 128 calibration
tokens); the peak RSS of that process is read from the kernel (wait4). The slope of peak RSS against
model size, in MB per MB of weights, is what O(one layer) means: it should be near zero, the intercept
being the process's fixed footprint plus a layer or two. A 70B projection multiplies the slope by 141 GB.

The eval row measures the 16-bit base of a model of ``--eval-size`` GB (`zoo baseline`: perplexity on
two windows, no lm-eval task), once with `--host-memory` and once without, each in its own process. A
CPU eval holds fp32 weights (twice the bf16 bytes), so the model is 2 x size / cap times the cap. The
bound is the cap + one fp32 layer + the plan's fixed eval overhead (``zoo.plan.estimate.OVERHEAD``)
+ an eval batch's logits and activations (the plan's ``pinned``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HIDDEN, INTER, HEADS, KV, VOCAB = 2048, 8192, 16, 4, 2048
LAYER_BYTES = 2 * (2 * HIDDEN * HIDDEN + 2 * HIDDEN * (HIDDEN * KV // HEADS) + 3 * HIDDEN * INTER + 2 * HIDDEN)


def make_model(folder: Path, layers: int) -> int:
    """Config, tokenizer and one shard per decoder layer; returns the bytes of weights written."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, LlamaConfig

    from zoo.tiny.bases import builtin_path

    folder.mkdir(parents=True)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTER,
        num_hidden_layers=layers,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 5e5},
        tie_word_embeddings=False,
        dtype="bfloat16",
    )
    cfg.save_pretrained(folder)
    AutoTokenizer.from_pretrained(builtin_path("tiny-llama3")).save_pretrained(folder)
    gen = torch.Generator().manual_seed(0)
    kv = HIDDEN * KV // HEADS

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 0.02).to(torch.bfloat16)

    index: dict[str, str] = {}
    total = 0

    def shard(name: str, tensors: dict[str, torch.Tensor]) -> None:  # written as made: one layer in memory
        nonlocal total
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        for k, t in tensors.items():
            index[k] = name
            total += t.numel() * t.element_size()

    shard("embed.safetensors", {"model.embed_tokens.weight": rand(VOCAB, HIDDEN)})
    for i in range(layers):
        p = f"model.layers.{i}."
        shard(
            f"layer-{i:03d}.safetensors",
            {
                p + "self_attn.q_proj.weight": rand(HIDDEN, HIDDEN),
                p + "self_attn.k_proj.weight": rand(kv, HIDDEN),
                p + "self_attn.v_proj.weight": rand(kv, HIDDEN),
                p + "self_attn.o_proj.weight": rand(HIDDEN, HIDDEN),
                p + "mlp.gate_proj.weight": rand(INTER, HIDDEN),
                p + "mlp.up_proj.weight": rand(INTER, HIDDEN),
                p + "mlp.down_proj.weight": rand(HIDDEN, INTER),
                p + "input_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
                p + "post_attention_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
            },
        )
    norm = torch.ones(HIDDEN, dtype=torch.bfloat16)
    shard("head.safetensors", {"model.norm.weight": norm, "lm_head.weight": rand(VOCAB, HIDDEN)})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": index}))
    return total


def _anon_kb(pid: int) -> int:
    """The process's anonymous resident memory now (heap, tensors), from /proc; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def build(tmp: Path, model: Path, method: str, host_gb: float) -> tuple[float, int, int, int]:
    """Wall seconds, peak RSS bytes (the kernel's), peak anonymous RSS bytes (sampled every 50 ms) and
    exit status of one `zoo build` process. RSS also counts the pages of memory-mapped safetensors files
    (the base's and the offloaded weights), which the kernel can drop at any time; the anonymous part is
    what the build really holds."""
    name = f"mem-{model.name.lower()}-{method}"
    catalog = tmp / f"recipes-{name}"
    catalog.mkdir()
    (catalog / f"{name}.yaml").write_text(
        f"name: {name}\nfamily: llama3\nmethod: {method}\nweights: {{bits: 4, group_size: 128}}\n"
        f"base: {{path: {model}, parameters: 1, license: apache-2.0}}\n"
        "calibration: {dataset: pydoc, samples: 4, seqlen: 128}\n"
    )
    cmd = [sys.executable, "-m", "zoo", "-q", "--recipes", str(catalog), "build", name, "--workdir", str(tmp / "work"),
           "--device", "cpu", "--host-memory", str(host_gb)]  # fmt: skip
    return measure(cmd, tmp, name)


def measure(cmd: list[str], tmp: Path, name: str) -> tuple[float, int, int, int]:
    """Wall seconds, peak RSS, peak anonymous RSS and exit status of ``cmd`` in its own process."""
    import threading

    start = time.time()
    proc = subprocess.Popen(cmd, env={**os.environ, "ZOO_CACHE": str(tmp / "cache")}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    peak_anon = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak_anon[0] = max(peak_anon[0], _anon_kb(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read().decode()[-1500:] if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    if status != 0:
        print(f"  {name}: exit {status >> 8}: {err.strip().splitlines()[-1] if err.strip() else ''}", file=sys.stderr)
    return time.time() - start, usage.ru_maxrss * 1024, peak_anon[0] * 1024, status


def evaluate(tmp: Path, model: Path, host_gb: float | None) -> tuple[float, int, int, int]:
    """`zoo baseline` of ``model`` (perplexity on two windows of 128 tokens), capped at ``host_gb`` or not."""
    name = "mem-eval"
    catalog = tmp / "recipes-eval"
    catalog.mkdir(exist_ok=True)
    (catalog / f"{name}.yaml").write_text(
        f"name: {name}\nfamily: llama3\nmethod: rtn\nweights: {{bits: 4, group_size: 128}}\n"
        f"base: {{path: {model}, parameters: 1, license: apache-2.0}}\n"
        "eval: {perplexity: [pydoc], seqlen: 128, tasks: []}\n"
    )
    work = tmp / ("eval-capped" if host_gb else "eval-whole")
    cmd = [sys.executable, "-m", "zoo", "-q", "--recipes", str(catalog), "baseline", name, "--workdir", str(work),
           "--device", "cpu", "--limit", "2", *(["--host-memory", str(host_gb)] if host_gb else [])]  # fmt: skip
    return measure(cmd, tmp, name)


def eval_rows(tmp: Path, size_gb: float, host_gb: float) -> list[dict[str, object]]:
    """The capped and the unconstrained eval of one model, and the bound the capped one must keep."""
    import shutil

    from zoo.catalog import load
    from zoo.plan import shape
    from zoo.plan.estimate import OVERHEAD
    from zoo.plan.estimate import evaluate as eval_need

    layers = max(1, round(size_gb * 1e9 / LAYER_BYTES))
    model = tmp / f"eval-{layers}L"
    size = make_model(model, layers)
    recipe_dir = tmp / "recipes-eval"
    rows: list[dict[str, object]] = []
    for cap in (host_gb, None):
        wall, rss, anon, status = evaluate(tmp, model, cap)
        rows.append({"cap_gb": cap, "layers": layers, "fp32_mb": 2 * size / 1e6, "rss_mb": rss / 1e6, "anon_mb": anon / 1e6,
                     "wall_s": wall, "ok": status == 0})  # fmt: skip
    recipe = load("mem-eval", recipe_dir)
    need = eval_need(recipe, shape(recipe, recipe_dir), False, "baseline", 1, False)  # the plan's CPU baseline
    bound = host_gb * 1e9 + need.layer + OVERHEAD["eval"] + need.pinned  # cap + one fp32 layer + fixed + a batch
    for r in rows:
        r["bound_mb"] = bound / 1e6 if r["cap_gb"] else None
    shutil.rmtree(model)
    return rows


def eval_verdict(evals: list[dict[str, object]]) -> list[str]:
    """The capped eval against its bound and against the unconstrained one, in words."""
    capped = next((r for r in evals if r["cap_gb"]), None)
    whole = next((r for r in evals if not r["cap_gb"]), None)
    if not capped or not whole or not capped["ok"] or not whole["ok"]:
        return ["An eval failed: no verdict."]
    c: dict = capped  # type: ignore[type-arg]
    w: dict = whole  # type: ignore[type-arg]
    anon = "within" if c["anon_mb"] <= c["bound_mb"] else "over"
    rss = "within" if c["rss_mb"] <= c["bound_mb"] else "over"
    return [f"Capped: peak anonymous RSS {c['anon_mb']:.0f} MB is {anon} the bound ({c['bound_mb']:.0f} MB); the kernel's "
            f"peak RSS {c['rss_mb']:.0f} MB is {rss} it, as it also counts the pages of the memory-mapped offload "
            f"files, which the kernel drops under pressure. Unconstrained, the same eval peaks at {w['rss_mb']:.0f} MB "
            f"({w['anon_mb']:.0f} MB anonymous): the cap takes {w['anon_mb'] / max(c['anon_mb'], 1):.1f}x less "
            f"anonymous memory, {c['wall_s'] / max(w['wall_s'], 1e-9):.2f}x the time."]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2.0, 4.0], help="model sizes in GB of bf16 weights")
    p.add_argument("--methods", nargs="*", default=["rtn", "gptq"], help="build rows (none: the eval row only)")
    p.add_argument("--host-memory", type=float, default=0.5, help="GB, passed to zoo build --host-memory")
    p.add_argument("--eval-size", type=float, default=2.0, help="GB of bf16 weights for the eval row (0: no eval row)")
    p.add_argument("--dir", type=Path, help="scratch folder (default: a temporary one; needs ~3x the largest size)")
    p.add_argument("--write-docs", action="store_true", help="write the tables into docs/performance.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as t:
        tmp = Path(t)
        rows = []
        for gb in args.sizes if args.methods else []:
            layers = max(1, round(gb * 1e9 / LAYER_BYTES))
            model = tmp / f"{layers}L"
            size = make_model(model, layers)
            for method in args.methods:
                wall, rss, anon, status = build(tmp, model, method, args.host_memory)
                rows.append({"method": method, "layers": layers, "weights_mb": size / 1e6, "rss_mb": rss / 1e6,
                             "anon_mb": anon / 1e6, "wall_s": wall, "ok": status == 0})  # fmt: skip
                r = rows[-1]
                print(f"{method:5} {layers:3d} layers {r['weights_mb']:8.0f} MB weights  peak RSS {r['rss_mb']:7.0f} MB"
                      f"  peak anonymous {r['anon_mb']:7.0f} MB  {wall:6.0f} s{'' if r['ok'] else '  FAILED'}",
                      flush=True)  # fmt: skip
            import shutil

            shutil.rmtree(model)
            shutil.rmtree(tmp / "work", ignore_errors=True)
        print(f"layer: {LAYER_BYTES / 1e6:.0f} MB bf16; --host-memory {args.host_memory} GB")
        notes: dict[str, list[str]] = {m: [] for m in args.methods}
        for method in args.methods:
            for key, what in (("rss_mb", "peak RSS"), ("anon_mb", "peak anonymous RSS")):
                pts = [(r["weights_mb"], r[key]) for r in rows if r["method"] == method and r["ok"]]
                if len(pts) >= 2:
                    (x0, y0), (x1, y1) = pts[0], pts[-1]
                    slope = (y1 - y0) / (x1 - x0)
                    line = (f"{method}: {what} grows {slope:.3f} MB per MB of weights; projected for LLaMA3-70B "
                            f"(141 GB bf16): {y1 + slope * (141e3 - x1):.0f} MB")  # fmt: skip
                    print(line)
                    notes[method].append(line + ".")
        evals = eval_rows(tmp, args.eval_size, args.host_memory) if args.eval_size > 0 else []
        for r in evals:
            cap = f"--host-memory {r['cap_gb']}" if r["cap_gb"] else "unconstrained"
            word = {True: "within", False: "over"}
            bound = (f"  bound {r['bound_mb']:7.0f} MB: anonymous {word[r['anon_mb'] <= r['bound_mb']]}, "
                     f"RSS {word[r['rss_mb'] <= r['bound_mb']]}") if r["bound_mb"] else ""  # fmt: skip
            print(f"eval  {cap:19} {r['fp32_mb']:8.0f} MB fp32 weights  peak RSS {r['rss_mb']:7.0f} MB  peak anonymous "
                  f"{r['anon_mb']:7.0f} MB  {r['wall_s']:6.0f} s{bound}{'' if r['ok'] else '  FAILED'}", flush=True)  # fmt: skip
        print(json.dumps({"build": rows, "eval": evals}))
        if args.write_docs:
            import report

            header = ["layers", "bf16 weights MB", "peak RSS MB", "peak anonymous RSS MB", "wall s"]
            blocks = {
                f"memory-{m}": {
                    "header": header,
                    "rows": [[r["layers"], f"{r['weights_mb']:.0f}", f"{r['rss_mb']:.0f}", f"{r['anon_mb']:.0f}",
                              f"{r['wall_s']:.0f}" + ("" if r["ok"] else " (failed)")] for r in rows if r["method"] == m],
                    "notes": [f"{m}, `--host-memory {args.host_memory}`; {LAYER_BYTES / 1e6:.0f} MB of bf16 per layer.",
                              *notes[m]],
                }
                for m in args.methods
            }  # fmt: skip
            if evals:
                blocks["memory-eval"] = {
                    "header": ["eval", "fp32 weights MB", "peak RSS MB", "peak anonymous RSS MB", "bound MB", "wall s"],
                    "rows": [[f"`--host-memory {r['cap_gb']}`" if r["cap_gb"] else "unconstrained", f"{r['fp32_mb']:.0f}",
                              f"{r['rss_mb']:.0f}", f"{r['anon_mb']:.0f}",
                              f"{r['bound_mb']:.0f}" if r["bound_mb"] else "-",
                              f"{r['wall_s']:.0f}" + ("" if r["ok"] else " (failed)")] for r in evals],
                    "notes": [f"`zoo baseline` (perplexity, 2 windows of 128 tokens) of a {evals[0]['layers']}-layer model on "
                              f"CPU (fp32); bound = the cap + one fp32 layer ({2 * LAYER_BYTES / 1e6:.0f} MB) + the plan's "
                              "fixed eval overhead + an eval batch's logits and activations.", *eval_verdict(evals)],
                }  # fmt: skip
            report.publish("memory", "docs/performance.md", blocks)


if __name__ == "__main__":
    main()
