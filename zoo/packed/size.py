"""What a packed DB-LLM release of a full-size base takes on disk, from its config alone (no weights, no torch).

#32's target for a packed checkpoint is (measured bits with metadata x decoder parameters / 8) + the 16-bit
embeddings, norms and lm_head, within 3%. DB-LLM's measured bits count a1, a2 and c (3 x 16 bits) per row
and block: its packed form stores 50 bits there (``codec``'s ``dual`` rule), where a table of the four rounded
levels took 64. This works the sum out for the study's bases (``zoo/plan/configs``) layer shape by layer
shape, as ``codec.encode`` and safetensors lay the tensors out, so the 8B and 70B figures in
``docs/packed.md`` are computed, not guessed. Two allowances are estimates: the safetensors header per tensor,
and the block rows whose fourth level the 2-bit correction cannot reach (``fix``: 6 bytes each; 0.1% of them
on random weights, both 16-bit dtypes), both under 0.05% of a release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "plan" / "configs"
HEADER_BYTES = 160  # a tensor's entry in the safetensors header: its name, dtype, shape and offsets
FIX_SHARE = 0.002  # block rows needing a stored fourth level: twice the 0.1% measured, to be safe


@dataclass(frozen=True)
class Estimate:
    base: str
    decoder_params: int
    rest_bytes: int  # embeddings, lm_head and norms in 16 bits
    target_bytes: float  # measured bits x decoder parameters / 8 + rest
    packed_bytes: float  # the dual rule (what zoo writes)
    table_bytes: float  # the four-level table (zoo-packed version 1)

    @property
    def over(self) -> float:
        """How far the packed bytes exceed the target, as a fraction of it."""
        return self.packed_bytes / self.target_bytes - 1

    @property
    def table_over(self) -> float:
        return self.table_bytes / self.target_bytes - 1


def _planes(bits: int, n: int) -> int:
    return bits * -(-n // 8)


def linear_shapes(config: dict[str, int]) -> list[tuple[int, int]]:
    """One decoder layer's Linear weights [out, in]: q, k, v, o, gate, up, down."""
    h, i = config["hidden_size"], config["intermediate_size"]
    head = config.get("head_dim") or h // config["num_attention_heads"]
    q, kv = config["num_attention_heads"] * head, config["num_key_value_heads"] * head
    return [(q, h), (kv, h), (kv, h), (h, q), (i, h), (i, h), (h, i)]


def dbllm(config: dict[str, int], base: str = "", group: int = 128) -> Estimate:
    """The packed DB-LLM checkpoint of a base with ``config`` (group 128 as the study's recipes) against #32's target."""
    layers, h = config["num_hidden_layers"], config["hidden_size"]
    params = bits = packed = table = 0.0
    for rows, cols in linear_shapes(config):
        nrb = rows * -(-cols // group)
        n = rows * cols
        params += n
        bits += 2 * n + 48 * nrb  # what DB-LLM's build counts
        codes = _planes(2, n) + 2 * HEADER_BYTES
        packed += codes + 6 * nrb + _planes(2, nrb) + 6 * FIX_SHARE * nrb + 3 * HEADER_BYTES
        table += codes + 8 * nrb
    embeddings = config["vocab_size"] * h * (1 if config.get("tie_word_embeddings") else 2)
    rest = 2 * (embeddings + (2 * layers + 1) * h)
    return Estimate(base, int(params * layers), rest, bits * layers / 8 + rest, packed * layers + rest, table * layers + rest)


def study_bases() -> list[Estimate]:
    """The estimate for each LLaMA-3 base zoo ships a config of (8B, 70B)."""
    out = []
    for f in sorted(CONFIGS.glob("meta-llama--*.json")):
        out.append(dbllm(json.loads(f.read_text()), f.stem.replace("--", "/")))
    return out
