"""GGUF (llama.cpp): the file with llama.cpp's LLaMA metadata, the LLaMA-3 tokenizer and ggml's tensor names.

Which block type holds each quantized Linear exactly, and the proof, are in ``gguf_blocks``.

llama.cpp loads a model only from what the file says, so this writes what its own converter
(``convert_hf_to_gguf.py``, LLaMA) writes for a LLaMA-3 checkpoint: the ``llama.*`` hyperparameters, a
``gpt2`` (byte-level BPE) tokenizer with the ``llama-bpe`` pre-tokenizer, every token with its type, the
merges, BOS/EOS and the chat template. Only a tokenizer whose pre-tokenizer is LLaMA-3's own is accepted:
llama.cpp picks its text splitting by that name, and another would split text differently from
transformers without any error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.export import gguf_blocks as g
from zoo.export.source import Source

# LLaMA-3's pre-tokenizer split (tokenizer.json, Split/Regex): what llama.cpp calls "llama-bpe".
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LAYER = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}  # fmt: skip
TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(module: str) -> str:
    """ggml's tensor name of a Hugging Face LLaMA module (``model.layers.3.mlp.up_proj`` -> ``blk.3.ffn_up``)."""
    if module in TOP:
        return TOP[module]
    parts = module.split(".")
    if parts[:2] == ["model", "layers"] and ".".join(parts[3:]) in LAYER:
        return f"blk.{parts[2]}.{LAYER['.'.join(parts[3:])]}"
    raise ValueError(f"{module} is not a LLaMA tensor llama.cpp knows")


def _pre_tokenizer(tok: dict[str, Any]) -> str:
    pre = tok.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    splits = [s.get("pattern", {}).get("Regex") for s in steps if s.get("type") == "Split"]
    if splits != [LLAMA3_SPLIT] or tok.get("model", {}).get("type") != "BPE":
        raise ValueError("its tokenizer is not LLaMA-3's byte-level BPE (llama.cpp would split text differently)")
    return "llama-bpe"


def vocabulary(folder: Path, vocab_size: int) -> dict[str, Any]:
    """Tokens (by id), their types, merges and special tokens from ``tokenizer.json`` and its config."""
    tok = json.loads((folder / "tokenizer.json").read_text())
    tcfg = json.loads((folder / "tokenizer_config.json").read_text()) if (folder / "tokenizer_config.json").exists() else {}
    pre = _pre_tokenizer(tok)
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    types = {i: 1 for i in by_id}  # NORMAL
    for a in tok.get("added_tokens", []):
        by_id[a["id"]] = a["content"]
        types[a["id"]] = 3 if a.get("special") else 4  # CONTROL, USER_DEFINED
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    toktypes = [types.get(i, 5) for i in range(vocab_size)]  # UNUSED where the vocabulary has a hole
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges", [])]
    if any(not isinstance(m, str) and any(" " in p for p in m) for m in tok["model"].get("merges", [])):
        raise ValueError("its BPE merges hold spaces, which llama.cpp's merge list cannot")
    ids = {t: i for i, t in by_id.items()}
    template = (tok.get("post_processor") or {}).get("single") or [{}]
    adds_bos = "SpecialToken" in template[0] and template[0]["SpecialToken"].get("id") == tcfg.get("bos_token")
    chat = folder / "chat_template.jinja"
    return {
        "pre": pre, "tokens": tokens, "types": toktypes, "merges": merges,
        "bos": ids.get(tcfg.get("bos_token")), "eos": ids.get(tcfg.get("eos_token")),
        "add_bos": bool(tcfg.get("add_bos_token", adds_bos)),
        "chat_template": chat.read_text() if chat.exists() else tcfg.get("chat_template"),
    }  # fmt: skip


def _hyper(w: Any, c: dict[str, Any]) -> None:
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"its RoPE is {rope.get('rope_type')!r}; zoo writes llama.cpp's plain RoPE only")
    heads, head_dim = c["num_attention_heads"], c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(c.get("num_key_value_heads", heads))
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(rope.get("rope_theta", c.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(float(c["rms_norm_eps"]))
    w.add_vocab_size(c["vocab_size"])


def write(src: Source, types: dict[str, str], path: Path, name: str) -> dict[str, Callable[[], np.ndarray]]:
    """Write ``path``; return, per GGUF tensor, how to compute zoo's reference for the proof."""
    import gguf

    c = src.config
    if c.get("tie_word_embeddings"):
        raise ValueError("its output layer is tied to the embeddings, which zoo's export does not write")
    vocab = vocabulary(src.folder, c["vocab_size"])
    heads = {"self_attn.q_proj": c["num_attention_heads"], "self_attn.k_proj": c.get("num_key_value_heads")}
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    _hyper(w, c)
    counts = {t: list(types.values()).count(t) for t in set(types.values())}
    main = max(counts, key=lambda t: counts[t]) if counts else "BF16"
    w.add_file_type(int(getattr(gguf.LlamaFileType, f"MOSTLY_{main}")))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(vocab["pre"])
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_token_merges(vocab["merges"])
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id)):
        if vocab[key] is not None:
            add(vocab[key])
    w.add_add_bos_token(vocab["add_bos"])
    if vocab["chat_template"]:
        w.add_chat_template(vocab["chat_template"])

    expected: dict[str, Callable[[], np.ndarray]] = {}
    for module, q in src.quantized.items():
        tail = ".".join(module.split(".")[3:])
        if tail in heads:
            q = g.permuted(q, g.rope_rows(q.shape[0], heads[tail] or c["num_attention_heads"]))
        out = gguf_name(module) + ".weight"
        w.add_tensor(out, g.encode(q, types[module]), raw_dtype=getattr(gguf.GGMLQuantizationType, types[module]))
        expected[out] = g.reference(q)
    for key, tensor in src.plain.items():
        if not key.endswith(".weight"):
            raise ValueError(f"{key} is not a weight llama.cpp's LLaMA has")
        tail = ".".join(key.split(".")[3:-1])
        if tail in heads:  # an unquantized q/k projection is reordered the same way
            tensor = tensor[g.rope_rows(tensor.shape[0], heads[tail] or c["num_attention_heads"])]
        data, kind = g.plain_bytes(tensor)
        out = gguf_name(key.removesuffix(".weight")) + ".weight"
        w.add_tensor(out, data, raw_dtype=getattr(gguf.GGMLQuantizationType, kind))
        expected[out] = g.reference_plain(tensor)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


def plan(src: Source) -> dict[str, str]:
    """Each quantized tensor's GGUF type; ValueError (the refusal) when one has none."""
    return g.check_all(src)


def export(src: Source, types: dict[str, str], out: Path, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """``out/<name>.gguf`` written and read back; the types and the proof for the record."""
    path = out / f"{name}{g.EXT}"
    expected = write(src, types, path, name)
    return types, g.prove(path, expected)
