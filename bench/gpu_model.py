"""The measured model for bench/gpu.py: LLaMA-3-8B / 70B's exact configuration with random weights,
written one decoder layer at a time, its tokenizer, random-token calibration text, and zoo recipes.

The weights are random (no Hub on a lent GPU box, and none is needed to time a method): every tensor
is drawn on the compute device, moved to the host and written to its own safetensors shard at once, so
the host never holds more than one layer (a 70B layer is 1.7 GB; the embedding 2.1 GB). The tokenizer
is zoo's tiny LLaMA-3 one (2048 ids): the embedding covers far more ids than it makes, which changes
no timing. Calibration text is random token ids decoded to text, so zoo and the plain llm-compressor
script tokenize the same file into the same windows, all ids below the tokenizer's size.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    full_layers: int  # the real model's depth, for extrapolating per-layer figures
    rope_theta: float = 500000.0
    max_positions: int = 8192

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def layer_params(self) -> int:
        kv = self.kv_heads * self.head_dim
        return 2 * self.hidden * self.hidden + 2 * self.hidden * kv + 3 * self.hidden * self.intermediate + 2 * self.hidden

    def params(self, layers: int) -> int:
        return layers * self.layer_params() + 2 * self.vocab * self.hidden + self.hidden

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SHAPES = {
    "8b": Shape("8b", 4096, 14336, 32, 8, 128256, 32),
    "70b": Shape("70b", 8192, 28672, 64, 8, 128256, 80),
}


def shrunk(shape: Shape, hidden: int | None, vocab: int | None) -> Shape:
    """The same family at another width: head dim 128 (64 below hidden 512), LLaMA-3's FFN ratio
    (3.5, rounded to 128 so group size 128 divides it) and its ratio of query to KV heads."""
    out = shape
    if hidden is not None:
        head = 128 if hidden >= 512 else 64
        heads = max(1, hidden // head)
        group = shape.heads // shape.kv_heads
        kv = max(1, heads // group)
        while heads % kv:
            kv -= 1
        inter = max(128, round(hidden * shape.intermediate / shape.hidden / 128) * 128)
        out = replace(out, name=f"{shape.name}-h{hidden}", hidden=hidden, intermediate=inter, heads=heads, kv_heads=kv)
    if vocab is not None:
        out = replace(out, vocab=vocab)
    return out


def tokenizer_dir() -> Path:
    from zoo.tiny.bases import builtin_path

    return Path(builtin_path("tiny-llama3"))


def make_model(folder: Path, shape: Shape, layers: int, device: str) -> int:
    """Config, tokenizer and one shard per decoder layer; returns the bytes of weights written."""
    import torch
    from safetensors.torch import save_file

    tiny = json.loads((tokenizer_dir() / "config.json").read_text())
    if shape.vocab < tiny["vocab_size"]:
        raise SystemExit(f"--vocab {shape.vocab} is below the tokenizer's {tiny['vocab_size']} ids")
    folder.mkdir(parents=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": tiny["bos_token_id"],
        "eos_token_id": tiny["eos_token_id"],
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "hidden_size": shape.hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": shape.max_positions,
        "mlp_bias": False,
        "num_attention_heads": shape.heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": shape.kv_heads,
        "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": shape.rope_theta},
        "tie_word_embeddings": False,
        "dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": shape.vocab,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        if (tokenizer_dir() / name).exists():
            shutil.copy(tokenizer_dir() / name, folder / name)
    gen = torch.Generator(device=device).manual_seed(0)
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim

    def rand(*size: int) -> torch.Tensor:
        return (torch.randn(*size, generator=gen, device=device, dtype=torch.bfloat16) * 0.02).cpu()

    def ones() -> torch.Tensor:
        return torch.ones(h, dtype=torch.bfloat16)

    index: dict[str, str] = {}
    total = 0

    def shard(name: str, tensors: dict[str, torch.Tensor]) -> None:  # written as made: one layer in memory
        nonlocal total
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        for k, t in tensors.items():
            index[k] = name
            total += t.numel() * t.element_size()

    shard("embed.safetensors", {"model.embed_tokens.weight": rand(shape.vocab, h)})
    for i in range(layers):
        p = f"model.layers.{i}."
        shard(f"layer-{i:03d}.safetensors", {
            p + "self_attn.q_proj.weight": rand(h, h),
            p + "self_attn.k_proj.weight": rand(kv, h),
            p + "self_attn.v_proj.weight": rand(kv, h),
            p + "self_attn.o_proj.weight": rand(h, h),
            p + "mlp.gate_proj.weight": rand(shape.intermediate, h),
            p + "mlp.up_proj.weight": rand(shape.intermediate, h),
            p + "mlp.down_proj.weight": rand(h, shape.intermediate),
            p + "input_layernorm.weight": ones(),
            p + "post_attention_layernorm.weight": ones(),
        })  # fmt: skip
    shard("head.safetensors", {"model.norm.weight": ones(), "lm_head.weight": rand(shape.vocab, h)})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": index}))
    return total


def random_text(path: Path, tokens: int, seed: int) -> None:
    """``tokens`` random ids below the tokenizer's plain vocabulary, decoded to text."""
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir())
    plain = min(tok.all_special_ids or [tok.vocab_size])
    ids = torch.randint(0, plain, (tokens,), generator=torch.Generator().manual_seed(seed)).tolist()
    path.write_text(tok.decode(ids))


def recipe(catalog: Path, name: str, like: str, base: Path, shape: Shape, layers: int, samples: int, seqlen: int,
           calib: Path, params: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """A recipe for ``base`` with the catalog recipe ``like``'s method, params, weights and activations,
    calibrated on ``calib``; written as JSON (which YAML reads)."""
    from zoo.catalog import load

    src = load(like, ROOT / "recipes")
    body: dict[str, Any] = {
        "name": name,
        "family": "llama3",
        "method": src.method,
        "params": {**src.params.model_dump(mode="json"), **(params or {})},
        "weights": src.weights.model_dump(mode="json", exclude_none=True),
        "base": {
            "path": str(base),
            "parameters": round(shape.params(layers) / 1e9, 6),
            "hidden_size": shape.hidden,
            "intermediate_size": shape.intermediate,
            "context_length": shape.max_positions,
            "license": "apache-2.0",
        },
        "calibration": {"dataset": "file", "path": str(calib), "samples": samples, "seqlen": seqlen},
    }
    if src.activations is not None:
        body["activations"] = src.activations.model_dump(mode="json")
    catalog.mkdir(parents=True, exist_ok=True)
    path = catalog / f"{name}.yaml"
    path.write_text(json.dumps(body, indent=1) + "\n")
    return path
