"""What an export starts from: a compressed-tensors build read back into its integers, scales and zero points.

A format can hold a build exactly only if it stores the same integer codes, the same scale per group and the
same offset, so the build is read here at that level (``QLinear``), not as dequantized floats. ``decode`` is
zoo's reference for every exactness proof: ``scale * (code - zero)`` evaluated in float64 and stored as
float32, which is exact (a bf16 scale has 8 significant bits, ``code - zero`` at most 9), so it is the one
value every correct reader of either file must produce. compressed-tensors' own decoder (in the model's
bf16) is this value rounded once to bf16; tests/test_export.py checks that.

Which recipes cannot be exported at all, whatever their numbers, is decided by ``refusal``: those whose
published form is not integer groups (the native methods' 16-bit form, QLoRA adapters), W8A8 (the study
cell quantizes activations at run time, which neither format can say) and LLaVA-Next (the vision tower).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from zoo.recipe import Recipe

# The config.json architectures zoo can describe to another runtime (the text LLaMA-3 family).
ARCHITECTURES = ("LlamaForCausalLM",)


@dataclass(frozen=True)
class QLinear:
    """One quantized Linear: ``w[r, c] = scales[r, c // group] * (codes[r, c] - zeros[r, c // group])``.

    ``codes`` and ``zeros`` are unsigned (compressed-tensors' signed values plus ``2**(bits-1)``, the offset
    its packing adds), so they read the same way MLX and GGUF's min/offset types do."""

    name: str  # the module, e.g. model.layers.0.self_attn.q_proj
    bits: int
    group: int  # columns per scale (the row length for per-channel)
    codes: np.ndarray  # uint8 (rows, cols)
    scales: np.ndarray  # float32 (rows, groups), each value exactly the stored one
    zeros: np.ndarray  # int16 (rows, groups), unsigned code of the zero point
    scale_dtype: str  # the stored scales' dtype ("bfloat16")

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape[0], self.codes.shape[1]


@dataclass
class Source:
    folder: Path
    config: dict[str, Any]
    quantized: dict[str, QLinear] = field(default_factory=dict)
    plain: dict[str, Any] = field(default_factory=dict)  # name -> torch tensor as stored (bf16 norms, embeddings)


def refusal(recipe: Recipe, fmt: str) -> str | None:
    """Why ``recipe`` has no exact ``fmt`` file whatever its numbers; None when only its numbers can tell."""
    if recipe.family != "llama3":
        return f"{recipe.family} is not a text LLaMA-3 model; zoo exports only those (a vision tower needs its own file)"
    if recipe.format == "fake":
        return (f"{recipe.method} publishes dequantized 16-bit weights (its codes live in zoo's packed format, which "
                f"{fmt} has no type for); writing them in {fmt} would mean quantizing them again")  # fmt: skip
    if recipe.format == "adapter":
        return f"{recipe.method} publishes an NF4 base with a LoRA adapter, which {fmt} cannot hold as one model"
    if recipe.format != "compressed-tensors":
        return f"format {recipe.format!r} is not one zoo reads for export"
    if recipe.activations is not None:
        return (f"W{recipe.weights.bits:g}A{recipe.activations.bits} quantizes activations per token at run time; a "
                f"{fmt} file holds weights only, so it would run as another model than this study cell")  # fmt: skip
    return None


def _weight_args(config: dict[str, Any]) -> dict[str, Any]:
    q = config.get("quantization_config") or {}
    groups = list((q.get("config_groups") or {}).values())
    if q.get("quant_method") != "compressed-tensors" or len(groups) != 1:
        raise ValueError("its config.json does not hold one compressed-tensors scheme")
    fmt = groups[0].get("format") or q.get("format")
    if fmt != "pack-quantized":
        raise ValueError(f"its compressed-tensors format is {fmt!r}, not pack-quantized integer weights")
    weights = dict(groups[0].get("weights") or {})
    if weights.get("type") != "int" or weights.get("strategy") not in ("group", "channel"):
        raise ValueError(f"its weights are {weights.get('type')}/{weights.get('strategy')}, not integer groups or channels")
    return weights


def read(folder: Path) -> Source:
    """The checkpoint in ``folder`` at the level of codes and scales; ValueError names what does not fit."""
    import torch
    from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    if (config.get("architectures") or [None])[0] not in ARCHITECTURES:
        raise ValueError(f"its architecture {config.get('architectures')} is not one of {', '.join(ARCHITECTURES)}")
    args = _weight_args(config)
    bits, symmetric, offset = int(args["num_bits"]), bool(args["symmetric"]), 1 << (int(args["num_bits"]) - 1)
    state: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(f))
    src = Source(folder, config)
    prefixes = sorted(k[: -len(".weight_packed")] for k in state if k.endswith(".weight_packed"))
    for p in prefixes:
        shape = tuple(int(x) for x in state.pop(f"{p}.weight_shape").tolist())
        scale = state.pop(f"{p}.weight_scale")
        codes = unpack_from_int32(state.pop(f"{p}.weight_packed"), bits, torch.Size(shape)).to(torch.int16) + offset
        group = shape[1] if args["strategy"] == "channel" else int(args["group_size"])
        if scale.shape != (shape[0], shape[1] // group) or shape[1] % group:
            raise ValueError(f"{p}: scales of shape {tuple(scale.shape)} do not fit a {shape} weight in groups of {group}")
        g_idx = state.pop(f"{p}.weight_g_idx", None)
        if g_idx is not None and not torch.equal(g_idx.long(), torch.arange(shape[1]) // group):
            raise ValueError(f"{p}: its groups are not runs of {group} adjacent columns (act-order g_idx)")
        zp = state.pop(f"{p}.weight_zero_point", None)
        if symmetric or zp is None:
            zeros = torch.full(tuple(scale.shape), offset, dtype=torch.int16)
        else:
            if zp.dtype == torch.int32:  # packed along the output dimension
                zp = unpack_from_int32(zp, bits, torch.Size((shape[0], scale.shape[1])), packed_dim=0)
            zeros = zp.to(torch.int16).reshape(scale.shape) + offset
        src.quantized[p] = QLinear(
            name=p, bits=bits, group=group, codes=codes.numpy().astype(np.uint8),
            scales=scale.float().numpy(), zeros=zeros.numpy(), scale_dtype=str(scale.dtype).removeprefix("torch."),
        )  # fmt: skip
    src.plain = state
    return src


def decode(q: QLinear) -> np.ndarray:
    """zoo's reference weight (float32, exact): what every reader of an exported file must give back."""
    s = np.repeat(q.scales.astype(np.float64), q.group, axis=1)
    z = np.repeat(q.zeros.astype(np.float64), q.group, axis=1)
    return (s * (q.codes.astype(np.float64) - z)).astype(np.float32)


def exact_in(values: np.ndarray, dtype: Any) -> np.ndarray:
    """Per element: whether ``values`` (float64) survive a round trip through ``dtype`` unchanged (and are finite)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        back = v.astype(dtype).astype(np.float64)
    return np.isfinite(back) & (back == v)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality of two float32 arrays (a signed zero counts as zero: -0.0 and 0.0 decode alike)."""
    a32, b32 = np.ascontiguousarray(a, dtype=np.float32) + 0.0, np.ascontiguousarray(b, dtype=np.float32) + 0.0
    return a32.shape == b32.shape and bool(np.array_equal(a32.view(np.uint32), b32.view(np.uint32)))
