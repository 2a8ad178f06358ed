"""MLX (mlx-lm): the same codes at the same bits, with float32 scales and biases.

MLX's affine quantization (``mx.quantize`` / ``mx.dequantize``; mlx-lm's ``QuantizedLinear``) stores, per
group of 32, 64 or 128 weights of a row, ``w = scale * q + bias`` with q unsigned at 2, 3, 4, 5, 6 or 8 bits,
packed into uint32 words as one little-endian bit stream (element 0 in the lowest bits; a 3-bit element may
straddle two words). zoo's ``w = s * (code - zero)`` is that with ``scale = s`` and ``bias = -s * zero``, so
the codes are copied, not quantized again; a group of 128 stays one group, a per-channel row becomes groups
of 128 (or 64, 32) sharing its scale.

The scales and biases are written in float32, not the model's bf16: MLX dequantizes in the scales' dtype,
and in bf16 it rounds ``scale * q`` before adding the bias, so about a third of the weights it computes
differ from the build's (measured with mlx 0.32.4 on zoo's tiny builds); in float32 both products are exact
and every weight is the build's own, bit for bit. ``-s * zero`` itself is always exact in float32. mlx-lm
then runs those layers in float32 (the extra bytes are 0.25 bit per weight at group 128).

The proof reads the file back with ``mx.load`` + ``mx.dequantize`` when mlx is installed (it has Linux CPU
wheels: ``pip install 'mlx[cpu]'``); otherwise with ``unpack`` below, a numpy decoder of the documented
layout, and the record says which reader it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.export.source import QLinear, Source, decode, same_bits

BITS = (2, 3, 4, 5, 6, 8)
GROUPS = (128, 64, 32)
WEIGHTS = "model.safetensors"
COPY = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json", "special_tokens_map.json")


def group_for(q: QLinear) -> tuple[int | None, str]:
    """The MLX group size holding ``q``'s groups whole, or None and why."""
    if q.bits not in BITS:
        return None, f"MLX has no {q.bits}-bit affine type (it has {', '.join(map(str, BITS))})"
    for g in GROUPS:
        if q.group % g == 0:
            return g, ""
    return None, f"its groups of {q.group} are not a multiple of MLX's group sizes {GROUPS}"


def check_all(src: Source) -> dict[str, int]:
    """Each quantized tensor's MLX group size, or ValueError naming the first one that does not map."""
    groups = {}
    for name, q in src.quantized.items():
        g, why = group_for(q)
        if g is None:
            raise ValueError(f"{name} ({q.bits}-bit, groups of {q.group}): {why}")
        groups[name] = g
    if len({q.bits for q in src.quantized.values()}) > 1:
        raise ValueError("its Linears have different bit widths, which zoo does not write as one MLX config")
    return groups


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes (rows, cols) as MLX's uint32 words: one little-endian bit stream per row."""
    rows, cols = codes.shape
    stream = ((codes.astype(np.uint32)[..., None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    packed = np.packbits(stream.reshape(rows, cols * bits), axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u4").reshape(rows, cols * bits // 32)


def unpack(words: np.ndarray, bits: int) -> np.ndarray:
    """``pack`` inverted: zoo's numpy reading of MLX's layout (used when mlx itself is not installed)."""
    rows = words.shape[0]
    stream = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), axis=1, bitorder="little")
    return (stream.reshape(rows, -1, bits).astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(-1)


def tensors(q: QLinear, group: int) -> dict[str, np.ndarray]:
    split = q.group // group
    scales = np.repeat(q.scales.astype(np.float32), split, axis=1)
    biases = (-np.repeat(q.scales.astype(np.float64) * q.zeros, split, axis=1)).astype(np.float32)
    return {"weight": pack(q.codes, q.bits), "scales": scales, "biases": biases}


def write(src: Source, groups: dict[str, int], out: Path, name: str) -> dict[str, Callable[[], np.ndarray]]:
    """``out``/model.safetensors, config.json (with MLX's ``quantization``) and the tokenizer files."""
    import torch
    from safetensors.torch import save_file

    state: dict[str, Any] = {}
    for module, q in src.quantized.items():
        for key, value in tensors(q, groups[module]).items():
            state[f"{module}.{key}"] = torch.from_numpy(value)
    state.update({k: v.contiguous() for k, v in src.plain.items()})
    save_file(state, str(out / WEIGHTS), metadata={"format": "mlx"})
    config = {k: v for k, v in src.config.items() if k != "quantization_config"}
    rope = config.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"its RoPE is {rope.get('rope_type')!r}; zoo writes mlx-lm's plain RoPE only")
    if "rope_theta" in rope:  # mlx-lm reads the top-level key (transformers 4's); without it, its default 10000
        config["rope_theta"] = rope["rope_theta"]
    bits = next(iter(src.quantized.values())).bits if src.quantized else 16
    common = max(set(groups.values()), key=list(groups.values()).count) if groups else 64
    config["quantization"] = {"group_size": common, "bits": bits, "mode": "affine"}
    for module, g in groups.items():
        if g != common:
            config["quantization"][module] = {"group_size": g, "bits": bits, "mode": "affine"}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for f in COPY:
        if (src.folder / f).is_file():
            shutil.copyfile(src.folder / f, out / f)
    return {m: _reference(q) for m, q in src.quantized.items()}


def _reference(q: QLinear) -> Callable[[], np.ndarray]:
    return lambda: decode(q)


def prove(out: Path, expected: dict[str, Callable[[], np.ndarray]], groups: dict[str, int], bits: int) -> dict[str, Any]:
    """Dequantize every exported Linear from the written file; each must equal zoo's weight bit for bit."""
    try:
        import mlx.core as mx
    except ImportError:
        mx = None
    if mx is not None:
        loaded = mx.load(str(out / WEIGHTS))

        def weight(m: str) -> np.ndarray:
            words, scales, biases = (loaded[f"{m}.{k}"] for k in ("weight", "scales", "biases"))
            w = mx.dequantize(words, scales, biases, group_size=groups[m], bits=bits)
            return np.array(w.astype(mx.float32))

        reader = f"mlx {_version('mlx')} mx.load + mx.dequantize"
    else:
        from safetensors import safe_open

        def weight(m: str) -> np.ndarray:
            with safe_open(str(out / WEIGHTS), "numpy") as f:  # the bf16 tensors, which numpy lacks, stay unread
                words, scales, biases = (f.get_tensor(f"{m}.{k}") for k in ("weight", "scales", "biases"))
            q = unpack(words, bits).astype(np.float32)
            return np.repeat(scales, groups[m], axis=1) * q + np.repeat(biases, groups[m], axis=1)

        reader = "zoo's numpy decoder of MLX's documented layout (mlx is not installed)"
    for m, want in expected.items():
        if not same_bits(weight(m), want()):
            raise ValueError(f"{m} does not decode to zoo's weights")
    return {"reader": reader, "tensors": len(expected), "equal": True}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def plan(src: Source) -> dict[str, int]:
    """Each quantized tensor's MLX group size; ValueError (the refusal) when one has none."""
    return check_all(src)


def export(src: Source, groups: dict[str, int], out: Path, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The MLX folder written into ``out`` and read back; the types and the proof for the record."""
    expected = write(src, groups, out, name)
    bits = next(iter(src.quantized.values())).bits if src.quantized else 16
    types = {m: f"affine {bits}-bit g{g}, float32 scales and biases" for m, g in groups.items()}
    return types, prove(out, expected, groups, bits)
