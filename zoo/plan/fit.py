"""Which placement fits a stage's need on a machine, and the smallest runner class that fits a recipe.

Accelerator memory counts at 90% (the CUDA context and the allocator's slack), host memory at 90% (the
OS, page cache), disk whole. A stage that fits nowhere on the machine is refused with the smallest of
``RUNNERS`` that would take it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from zoo.plan.estimate import Need

GPU_USABLE = 0.9
HOST_USABLE = 0.9
VLLM_UTILIZATION = 0.8  # what zoo's vLLM backend asks of each GPU (harness.py)


@dataclass(frozen=True)
class Machine:
    gpus: int
    gpu_bytes: int  # per GPU
    host_bytes: int
    disk_bytes: int
    name: str = ""

    def describe(self) -> str:
        gpus = f"{self.gpus} x {gb(self.gpu_bytes)} GPU" if self.gpus else "no GPU"
        return f"{gpus}, {gb(self.host_bytes)} host RAM, {gb(self.disk_bytes)} disk"


@dataclass(frozen=True)
class Runner:
    """A class of release runners: ``labels`` is what a workflow's ``runs-on`` asks for."""

    name: str
    labels: tuple[str, ...]
    machine: Machine


def _runner(name: str, labels: tuple[str, ...], gpus: int, gpu_gb: float, host_gb: int, disk_gb: int) -> Runner:
    return Runner(name, labels, Machine(gpus, int(gpu_gb * 1e9), host_gb * 10**9, disk_gb * 10**9, name))


GPU = ("self-hosted", "linux", "gpu")
# Smallest first. GPU sizes are the cards' real bytes (24 GiB, 80 GiB), disks what the runners keep free.
RUNNERS = (
    _runner("ubuntu-latest", ("ubuntu-latest",), 0, 0, 16, 14),
    _runner("gpu-24gb", (*GPU, "gpu-24gb"), 1, 25.7, 64, 1000),
    _runner("gpu-80gb", (*GPU, "gpu-80gb", "ram-128gb"), 1, 85.8, 128, 2000),
    _runner("gpu-80gb-x2", (*GPU, "gpu-80gb", "gpus-2", "ram-256gb"), 2, 85.8, 256, 2000),
    _runner("gpu-80gb-x4", (*GPU, "gpu-80gb", "gpus-4", "ram-512gb"), 4, 85.8, 512, 4000),
    _runner("gpu-80gb-x8", (*GPU, "gpu-80gb", "gpus-8", "ram-1024gb"), 8, 85.8, 1024, 8000),
)


def gb(n: float) -> str:
    if n < 1e9:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e9:.1f} GB" if n < 10e9 else f"{n / 1e9:.0f} GB"


@dataclass(frozen=True)
class Placement:
    stage: str
    fits: bool
    strategy: str
    gpus: int  # GPUs it uses
    per_gpu: int  # peak bytes on the busiest GPU
    host: int  # peak host bytes, the process's overhead included
    disk: int
    flags: tuple[str, ...] = field(default=())  # what to pass the stage (--host-memory GB)
    offloaded: bool = False  # weights streamed from host or disk on every forward pass: correct but slow
    why: str = ""  # when it does not fit: what is short
    note: str = ""  # why a stage leaves GPUs of the machine idle


def _host_cap(need: Need, m: Machine, extra: int) -> int:
    """The most weight bytes the host can hold next to the process and what the stage keeps there."""
    return int(m.host_bytes * HOST_USABLE) - need.overhead - need.host - extra


def _flag(cap: int) -> tuple[str, ...]:
    return ("--host-memory", f"{math.floor(cap / 1e8) / 10:g}")


def _spill(
    need: Need, m: Machine, onhost: int, device: str, gpus: int, per_gpu: int, extra: int = 0, spill: bool = True
) -> Placement:
    """``onhost`` weight bytes that the GPUs (or none) leave: on the host if they fit, else the rest to disk
    (``spill``: the stage can offload to disk). ``extra``: what the computing CPU holds besides."""
    cap = _host_cap(need, m, extra)
    fixed = need.overhead + need.host + extra
    streamed = gpus > 0 and onhost > 0 and need.kind == "resident"  # the GPUs fetch host-held layers every pass
    if onhost <= cap:
        strategy = f"{device} + host offload" if streamed else device
        return Placement(need.stage, True, strategy, gpus, per_gpu, fixed + onhost, need.disk, offloaded=streamed)
    over = onhost - max(cap, 0)
    if not spill or cap < max(need.layer, 1) or need.disk + over > m.disk_bytes:
        short = "disk" if spill and cap >= max(need.layer, 1) else "host RAM"
        what = f"needs {gb(fixed + onhost)} of host RAM{' or offload disk' if spill else ''}; {short} is short"
        return Placement(need.stage, False, "does not fit", gpus, per_gpu, fixed + onhost, need.disk + over, why=what)
    return Placement(need.stage, True, f"{device} + disk offload", gpus, per_gpu, fixed + cap, need.disk + over, _flag(cap),
                     offloaded=need.kind == "resident")  # fmt: skip


def place(need: Need, m: Machine, allow_offload: bool = True) -> Placement:
    """The cheapest placement of ``need`` on ``m``: one GPU, layers over several, host or disk offload.
    ``allow_offload``: an eval may stream weights from host or disk (correct, but slow)."""
    usable = int(m.gpu_bytes * GPU_USABLE)
    if need.kind == "vllm":
        return _vllm(need, m)
    if m.gpus == 0:
        device = "CPU, layer by layer" if need.kind == "sequential" else "CPU"
        spill = need.kind == "sequential" or (need.kind == "resident" and allow_offload)
        return _spill(need, m, need.weights, device, 0, 0, need.pinned, spill)
    if need.kind == "sequential":
        if need.pinned > usable:
            return _short(need, need.pinned, "one GPU holds one layer with its Hessians and activations")
        if need.ranks and m.gpus > 1:
            return _ranks(need, m)
        placed = _spill(need, m, need.weights, "one GPU, layer by layer", 1, need.pinned)
        return dataclasses.replace(placed, note=need.one_gpu) if m.gpus > 1 else placed
    if need.kind in ("train", "single"):
        if need.total > usable:
            return _short(need, need.total, "this stage runs on one GPU")
        return _spill(need, m, 0, "one GPU", 1, need.total)
    if need.total <= usable:
        return _spill(need, m, 0, "one GPU", 1, need.total)
    k = math.ceil(need.total / usable)
    if k <= m.gpus and need.pinned < usable:
        return _spill(need, m, 0, f"layers spread over {k} GPUs (device_map=auto)", k, need.weights // k + need.pinned)
    if not allow_offload:
        return _short(need, need.total, f"layers spread over {k} GPUs")
    onhost = need.total - m.gpus * usable
    return _spill(need, m, onhost, f"layers over {m.gpus} GPU{'s' if m.gpus > 1 else ''}", m.gpus, usable)


def _ranks(need: Need, m: Machine) -> Placement:
    """llm-compressor's distributed oneshot: a process per GPU, each onloading one layer to its GPU and
    calibrating on its share of the windows. The weights sit once in shared host memory (or on disk); each
    rank adds its own process and its share of the cached activations, whose sum is the one-process cache."""
    many = dataclasses.replace(need, overhead=need.overhead * m.gpus)
    placed = _spill(many, m, need.weights, f"llm-compressor distributed, {m.gpus} ranks (one per GPU), layer by layer",
                    m.gpus, need.pinned)  # fmt: skip
    return placed


def _short(need: Need, device_bytes: int, what: str) -> Placement:
    return Placement(need.stage, False, "does not fit", 0, device_bytes, 0, need.disk,
                     why=f"needs {gb(device_bytes)} of accelerator memory ({what})")  # fmt: skip


def tensor_parallel(gpus: int, kv_heads: int = 8) -> int:
    """vLLM's tensor-parallel size on ``gpus`` visible GPUs: all of them, down to the largest power of two
    that divides the KV heads (LLaMA-3's 8). ``zoo eval --backend vllm`` starts its engines with this size
    (``harness.tensor_parallel``), so the plan's per-GPU figure is the one the eval meets."""
    return max(p for p in (1, 2, 4, 8, 16) if p <= max(gpus, 1) and kv_heads % p == 0)


def _vllm(need: Need, m: Machine) -> Placement:
    """vLLM's tensor parallelism over every GPU (a power of two), each holding its share of the weights."""
    budget = int(m.gpu_bytes * VLLM_UTILIZATION)
    tp = tensor_parallel(m.gpus)
    per = need.weights // tp + need.pinned
    if m.gpus and per <= budget:
        return Placement(need.stage, True, f"vLLM tensor parallel {tp}", tp, per, need.overhead + need.host, need.disk)
    over = f"{tp} GPU{'s' if tp > 1 else ''}"
    return _short(need, per, f"vLLM keeps every weight on the GPUs: {gb(need.weights + need.pinned)} over {over}")


def fits_all(needs: list[Need], m: Machine, allow_offload: bool = True) -> list[Placement]:
    return [place(n, m, allow_offload) for n in needs]
