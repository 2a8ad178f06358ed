"""What each stage of a recipe holds at its peak, in bytes, from the base's shape alone.

A stage's need is split by where it can go: ``weights`` can be spread over GPUs or offloaded to the
host and disk (accelerate's ``device_map``); ``pinned`` must sit on the device that computes (one
decoder layer, its Hessians and a forward pass's activations in a build; the logits and KV cache of an
eval batch); ``host`` is held on the host whatever the placement (calibration activations the
sequential pipeline caches, a checkpoint shard being read or written); ``disk`` is written or read
whatever the placement (the base in the HF cache, the checkpoint). The Python process itself
(interpreter, torch, transformers and the stage's harness) is a constant measured once per stage:
``OVERHEAD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from zoo.plan.shape import Shape
from zoo.tasks import TASKS

if TYPE_CHECKING:
    from zoo.recipe import Recipe

# Peak RSS of a `zoo build` / `zoo eval` process before any model is loaded, measured on this project's
# CI machine (CPU torch 2.13, transformers 5.17, llm-compressor 0.14, lm-eval 0.4.9): the imports, the
# tokenizer, the harness's task index. tests/test_plan.py checks estimates built on them against the
# measured peaks of whole tiny runs.
OVERHEAD = {"build": 640 * 10**6, "eval": 600 * 10**6, "train": 640 * 10**6, "lmms-eval": 900 * 10**6, "vllm": 2 * 10**9}
SHARD = 5 * 10**9  # the largest safetensors shard a Hub base has, read whole while loading
# Methods that hold a Hessian (in_features^2, fp32) for every Linear of the layer being quantized.
HESSIAN = {"gptq", "gptqm", "quip", "billm", "pbllm", "slimllm", "dbllm", "obs"}
ACTIVATIONS = {"awq"}  # caches each Linear group's inputs over all calibration samples on the device
TRAINED = {"qlora", "irqlora"}
LLMC = {"rtn", "gptq", "awq", "smoothquant"}  # through llm-compressor, in its compressed-tensors format
NATIVE_ONE_GPU = (
    "zoo's native methods run in one process, one decoder layer at a time (each layer's inputs are the previous "
    "quantized layer's outputs, so layers cannot run side by side); splitting their calibration windows over GPUs, "
    "as llm-compressor does, is not implemented, so more GPUs do not shorten their build"
)
GPTQMODEL_ONE_GPU = "gptqmodel (format gptq/awq) quantizes layer by layer on one GPU; zoo does not drive its multi-GPU mode"
Kind = Literal["sequential", "resident", "train", "single", "vllm"]


@dataclass(frozen=True)
class Need:
    stage: str
    kind: Kind  # sequential: one layer on the device at a time; resident: the whole model placed; train/single: one device
    weights: int
    pinned: int
    host: int
    disk: int
    overhead: int
    layer: int  # one decoder layer's weights: the least a host cap can be
    ranks: bool = False  # a build that runs one process per GPU (llm-compressor's distributed oneshot)
    one_gpu: str = ""  # why a build that cannot spread runs on one GPU, for the plan to say

    @property
    def total(self) -> int:
        return self.weights + self.pinned


def _forward(s: Shape, batch: int, seqlen: int, dtype: int) -> int:
    """One decoder layer's forward activations for ``batch`` x ``seqlen`` tokens (MLP, attention scores)."""
    mlp = batch * seqlen * (3 * s.intermediate + 6 * s.hidden) * dtype
    scores = batch * s.heads * seqlen * seqlen * dtype
    return mlp + scores


def _eval_pinned(s: Shape, batch: int, seqlen: int, dtype: int) -> int:
    """An eval batch: its logits (and one window's fp32 copy), KV cache, and one layer's activations."""
    logits = batch * seqlen * s.vocab * dtype + seqlen * s.vocab * 4
    return logits + s.kv_bytes(batch * seqlen, dtype) + _forward(s, batch, seqlen, dtype)


def _dense(s: Shape, dtype: int) -> int:
    return s.params * dtype


def build(recipe: Recipe, s: Shape, on_gpu: bool, hub: bool) -> Need:
    """The sequential pipeline: the base on the host, one layer onloaded at a time with its Hessians."""
    c = recipe.calibration
    stored = s.dtype_bytes
    layer = (s.layer_linear_params + 2 * s.hidden) * stored
    pinned = layer + _forward(s, 1, c.seqlen, 4 if not on_gpu else stored)
    if recipe.method in HESSIAN:
        pinned += sum(n * n * 4 for n in s.linear_inputs)
    if recipe.method in ACTIVATIONS:
        pinned += c.samples * c.seqlen * (3 * s.hidden + s.intermediate) * stored
    cached = 0 if recipe.method == "rtn" else 2 * c.samples * c.seqlen * s.hidden * stored  # layer inputs and outputs
    weights = _dense(s, stored)
    shard = min(weights, SHARD)
    disk = weights * (2 if hub else 1)  # the base in the HF cache and the checkpoint (never larger than the base)
    ranks = recipe.method in LLMC and recipe.format == "compressed-tensors"
    one_gpu = "" if ranks else GPTQMODEL_ONE_GPU if recipe.method in LLMC else NATIVE_ONE_GPU
    return Need("build", "sequential", weights, pinned, cached + shard, disk, OVERHEAD["build"], layer, ranks, one_gpu)


def train(recipe: Recipe, s: Shape, on_gpu: bool, hub: bool) -> Need:
    """QLoRA / IR-QLoRA: the NF4 base, the adapters with AdamW's state, checkpointed activations."""
    from zoo.lora.params import LoRAParams

    p = recipe.params if isinstance(recipe.params, LoRAParams) else LoRAParams()
    nf4 = s.layers * s.layer_linear_params * 53 // 100  # 4 bits and a double-quantized absmax per 64 weights
    rest = (s.embedding_params + s.vision_params + s.layers * 2 * s.hidden) * s.dtype_bytes
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    dims = {"q_proj": (s.hidden, q), "k_proj": (s.hidden, kv), "v_proj": (s.hidden, kv), "o_proj": (q, s.hidden),
            "gate_proj": (s.hidden, s.intermediate), "up_proj": (s.hidden, s.intermediate),
            "down_proj": (s.intermediate, s.hidden)}  # fmt: skip
    lora = s.layers * sum(p.rank * sum(dims[m]) for m in p.target_modules if m in dims)
    b, n = p.batch_size, p.max_seq_len
    checkpoints = s.layers * b * n * s.hidden * s.dtype_bytes  # gradient checkpointing keeps each layer's input
    one_layer = b * n * (34 * s.hidden + 5 * s.heads * n) * s.dtype_bytes
    logits = b * n * s.vocab * (s.dtype_bytes + 4 + 4)  # the logits, their fp32 copy in the loss, its gradient
    pinned = lora * 16 + checkpoints + one_layer + logits  # fp32 weight, gradient and two Adam moments
    disk = _dense(s, s.dtype_bytes) * (2 if hub else 1) + lora * 18
    return Need("build (LoRA training)", "train", nf4 + rest, pinned, SHARD if hub else 0, disk, OVERHEAD["train"], 0)


def evaluate(recipe: Recipe, s: Shape, on_gpu: bool, stage: str, batch: int, hub: bool) -> Need:
    """perplexity and lm-eval on the HF backend: the whole model placed, bf16 on GPUs and fp32 on the CPU
    (as ``zoo eval`` loads it); a quantized checkpoint counts at its dense size."""
    dtype = s.dtype_bytes if on_gpu else 4
    seqlen = recipe.eval.seqlen
    weights = _dense(s, dtype)
    layer = (s.layer_linear_params + 2 * s.hidden) * dtype
    disk = _dense(s, s.dtype_bytes) * (2 if hub and stage == "baseline" else 1)
    shard = min(_dense(s, s.dtype_bytes), SHARD)
    return Need(stage, "resident", weights, _eval_pinned(s, batch, seqlen, dtype), shard, disk, OVERHEAD["eval"], layer)


def vision(recipe: Recipe, s: Shape, batch: int) -> Need:
    """lmms-eval's llava_hf: its own load of the checkpoint (16-bit) on one device, an image's tokens per item."""
    tokens = s.image_tokens + 512
    pinned = _eval_pinned(s, batch, tokens, s.dtype_bytes)
    weights = _dense(s, s.dtype_bytes)
    return Need("lmms-eval", "single", weights, pinned, min(weights, SHARD), 0, OVERHEAD["lmms-eval"], 0)


def vllm(recipe: Recipe, s: Shape, batch: int) -> Need:
    """lm-eval's vLLM backend: the 16-bit weights split by tensor parallelism, its KV cache reserve after."""
    weights = _dense(s, s.dtype_bytes)
    pinned = _eval_pinned(s, batch, recipe.eval.seqlen, s.dtype_bytes)
    return Need("lm-eval (vLLM)", "vllm", weights, pinned, 0, 0, OVERHEAD["vllm"], 0)


def needs(recipe: Recipe, s: Shape, on_gpu: bool, batch: int = 1, backend: str = "hf") -> list[Need]:
    """Every stage ``zoo release`` runs for ``recipe``, in order."""
    hub = recipe.base.repo_id is not None
    first = train(recipe, s, on_gpu, hub) if recipe.method in TRAINED else build(recipe, s, on_gpu, hub)
    out = [first, evaluate(recipe, s, on_gpu, "baseline", batch, hub), evaluate(recipe, s, on_gpu, "eval", batch, hub)]
    text = [t for t in recipe.eval.tasks if TASKS[t].harness == "lm-eval"]
    if backend == "vllm" and text:
        out.append(vllm(recipe, s, batch))
    if any(TASKS[t].harness == "lmms-eval" for t in recipe.eval.tasks):
        out.append(vision(recipe, s, batch))
    return out
