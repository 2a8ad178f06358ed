"""bench/gpu.py's tasks: each runs one or more child processes under the time budget and returns rows.

Every measured thing is its own process (python -m zoo build, the plain oneshot script, gpu_run.py), so
its wall time, peak host RSS (the kernel's, from wait4) and peak GPU memory (torch's, in that process)
are its own, and the budget can stop it: a child gets at most the time left and is killed past it.
A task that is guessed not to fit in what is left is skipped, and its row says so. Guesses are crude
(FLOPs at a nominal rate plus a process's start) and are rescaled by the first build actually measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_model import ROOT, Shape, recipe

SCHEMES = {"gptq": "llama3-8b-gptq-4bit", "awq": "llama3-8b-awq-4bit", "rtn": "llama3-8b-rtn-8bit-pc",
           "smoothquant": "llama3-8b-smoothquant-w8a8"}  # fmt: skip
NATIVE = {"quip": "llama3-8b-quip-2bit-pc", "pbllm": "llama3-8b-pbllm-2bit", "dbllm": "llama3-8b-dbllm-2bit",
          "billm": "llama3-8b-billm-1.1bit", "slimllm": "llama3-8b-slimllm-2bit"}  # fmt: skip
LORA = {"qlora": "llama3-8b-qlora-4bit", "irqlora": "llama3-8b-irqlora-4bit"}
# work per calibration token and weight, in forward passes: a nominal guess, rescaled by measurement
PASSES = {"gptq": 3, "awq": 25, "rtn": 0, "smoothquant": 2, "quip": 8, "pbllm": 6, "dbllm": 40, "billm": 8, "slimllm": 12}


@dataclass
class Ctx:
    tmp: Path
    model: Path
    shape: Shape
    layers: int
    device: str
    samples: int
    seqlen: int
    calib: Path
    windows: Path
    deadline: float
    scale: float = 1.0  # measured / guessed, from the first build
    builds: dict[str, Path] = field(default_factory=dict)

    @property
    def rate(self) -> float:  # nominal FLOP/s of a method's mixed work
        return 1.5e14 if self.device == "cuda" else 2e10

    @property
    def start_s(self) -> float:  # a child's imports and model load before any work
        return 25.0 if self.device == "cuda" else 8.0

    def left(self) -> float:
        return self.deadline - time.time()

    def guess_build(self, method: str) -> float:
        flops = 2 * self.shape.params(self.layers) * self.samples * self.seqlen * PASSES.get(method, 4)
        io = self.shape.params(self.layers) * 2 * 3 / (2e9 if self.device == "cuda" else 4e8)
        return self.start_s + (flops / self.rate + io) * self.scale

    def env(self) -> dict[str, str]:
        env = {**os.environ, "ZOO_CACHE": str(self.tmp / "cache"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}  # fmt: skip
        if self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env


def child(ctx: Ctx, cmd: list[str]) -> dict[str, Any]:
    """Wall seconds, peak RSS and exit status of one process; killed (with its group) at the deadline."""
    timeout = max(1.0, ctx.left())
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ctx.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    out: dict[str, Any] = {"wall_s": round(time.time() - start, 3), "peak_rss_bytes": usage.ru_maxrss * 1024}
    if killed.is_set():
        out["status"] = f"timed out after {timeout:.0f} s (the --minutes budget)"
    elif status != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        out["status"] = f"failed (exit {os.waitstatus_to_exitcode(status)}): {lines[-1][:300] if lines else ''}"
    else:
        out["status"] = "ok"
    return out


def skipped(ctx: Ctx, guess: float) -> str | None:
    left = ctx.left()
    return None if guess <= left else f"skipped: needs ~{guess:.0f} s, {max(0.0, left):.0f} s left of --minutes"


def zoo_build(ctx: Ctx, name: str, like: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    catalog = ctx.tmp / "catalog" / name
    recipe(catalog, name, like, ctx.model, ctx.shape, ctx.layers, ctx.samples, ctx.seqlen, ctx.calib, params)
    work = ctx.tmp / "work"
    run = child(ctx, [sys.executable, "-m", "zoo", "-q", "--recipes", str(catalog), "build", name, "--workdir", str(work),
                      "--device", ctx.device, "--json"])  # fmt: skip
    if run["status"] != "ok":
        return run
    record = json.loads((work / name / "build.json").read_text())
    ctx.builds[name] = work / name / "model"
    gpu = record.get("gpu") or {}
    return {**run, "peak_gpu_bytes": gpu.get("peak_bytes"), "in_process_rss_bytes": record["peak_host_rss_bytes"],
            "output_bytes": record["total_bytes"], "timings_s": record["timings_s"]}  # fmt: skip


def build_pair(ctx: Ctx, scheme: str) -> list[dict[str, Any]]:
    """zoo build and the plain oneshot script on one scheme, back to back."""
    guess = ctx.guess_build(scheme)
    rows: list[dict[str, Any]] = []
    for side in ("zoo", "oneshot"):
        row: dict[str, Any] = {"scheme": scheme, "side": side}
        why = skipped(ctx, guess)
        if why:
            rows.append({**row, "status": why})
            continue
        if side == "zoo":
            got = zoo_build(ctx, f"bench-{scheme}", SCHEMES[scheme])
            if got["status"] == "ok" and ctx.scale == 1.0:
                ctx.scale = min(20.0, max(0.05, (got["wall_s"] - ctx.start_s) / max(1e-3, guess - ctx.start_s)))
                guess = ctx.guess_build(scheme)
        else:
            out, result = ctx.tmp / f"oneshot-{scheme}", ctx.tmp / f"oneshot-{scheme}.json"
            got = child(ctx, [sys.executable, str(ROOT / "bench" / "gpu_oneshot.py"), scheme, str(ctx.model), str(out),
                              str(ctx.windows), str(result)])  # fmt: skip
            if got["status"] == "ok":
                got["peak_gpu_bytes"] = json.loads(result.read_text())["peak_gpu_bytes"]
                got["output_bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                ctx.builds[f"oneshot-{scheme}"] = out
        rows.append({**row, **got})
    return rows


def native(ctx: Ctx, method: str) -> dict[str, Any]:
    """Seconds per decoder layer of a method zoo implements itself: its quantize stage over the depth."""
    why = skipped(ctx, ctx.guess_build(method))
    if why:
        return {"method": method, "status": why}
    got = zoo_build(ctx, f"bench-{method}", NATIVE[method])
    if got["status"] == "ok":
        got["per_layer_s"] = got["timings_s"]["quantize"] / ctx.layers
    return {"method": method, **got}


def lora(ctx: Ctx, method: str, steps: int, batch: int, seqlen: int) -> dict[str, Any]:
    """``steps`` LoRA steps on the NF4 base at the shape: seconds per step from the training record."""
    tokens = steps * batch * seqlen
    guess = ctx.start_s + 6 * 2 * ctx.shape.params(ctx.layers) * tokens / ctx.rate * ctx.scale + ctx.guess_build("rtn")
    why = skipped(ctx, guess)
    if why:
        return {"method": method, "status": why}
    params = {"dataset": "builtin", "steps": steps, "save_every": steps, "batch_size": batch, "max_seq_len": seqlen}
    got = zoo_build(ctx, f"bench-{method}", LORA[method], params)
    if got["status"] == "ok":
        training = json.loads((ctx.builds[f"bench-{method}"] / "quantization.json").read_text())["training"]
        got.update(steps=training["steps"], train_s=training["seconds"], per_step_s=training["seconds"] / training["steps"])
    return {"method": method, **got}


def in_model(ctx: Ctx, part: str, job: dict[str, Any], guess: float) -> dict[str, Any]:
    """One gpu_run.py process (eval, or a checkpoint's serve and quality)."""
    why = skipped(ctx, guess)
    if why:
        return {"status": why}
    n = len(list(ctx.tmp.glob("job-*.json")))
    job_file, result = ctx.tmp / f"job-{n}.json", ctx.tmp / f"result-{n}.json"
    job_file.write_text(json.dumps({"device": ctx.device, **job}))
    got = child(ctx, [sys.executable, str(ROOT / "bench" / "gpu_run.py"), part, str(job_file), str(result)])
    if got["status"] == "ok":
        got.update(json.loads(result.read_text()))
    return got
