"""A recipe's real base, shrunk: its config, tokenizer and processor files at the pinned revision,
with random weights for a model of the same architecture small enough to build on a CPU in seconds.

What is kept is everything a stage reads by name or by format: the architecture class, vocabulary
and special tokens, rope settings, context length, GQA ratio (query heads per key/value head),
the vision tower's image size, patch size and grid pinpoints, the chat template. What shrinks is
depth and width: two decoder layers, one key/value head, 64-dim heads, and an MLP keeping the base's
width ratio rounded to a multiple of 128 (every method's group size divides it). The weights are
random, so the numbers mean nothing; the point is that every stage meets the real formats.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.loader import LICENSE_FILES
from zoo.workdir import staging

log = logging.getLogger(__name__)

# The small files of a model repo; weights (and their shard index) are never fetched. The card and
# license files come too: a release carries the base's license and mirrors its gating.
SMALL_FILES = ["*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "README.md", *LICENSE_FILES]
SKIP = (".safetensors.index.json", ".bin.index.json")
LAYERS = 2
HEAD_DIM = 64
VISION = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 4}


def _round128(x: float) -> int:
    return max(128, int(round(x / 128)) * 128)


def shrink_text(cfg: dict[str, Any]) -> dict[str, Any]:
    """A LLaMA-style text config with the same GQA ratio and MLP ratio, two layers deep."""
    heads, kv = int(cfg["num_attention_heads"]), int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
    ratio = max(1, heads // kv)
    hidden = ratio * HEAD_DIM
    if hidden % 128:  # group sizes of 128 must divide every input width
        ratio, hidden = ratio * 2, ratio * 2 * HEAD_DIM
    width = float(cfg["intermediate_size"]) / float(cfg["hidden_size"])
    out = dict(cfg)
    out.update(
        num_hidden_layers=LAYERS,
        num_attention_heads=ratio,
        num_key_value_heads=1,
        head_dim=HEAD_DIM,
        hidden_size=hidden,
        intermediate_size=_round128(width * hidden),
    )
    return out


def shrink_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The whole config: text models directly, LLaVA-Next's text and vision parts separately."""
    if "text_config" in cfg:
        out = dict(cfg)
        out["text_config"] = shrink_text(cfg["text_config"])
        vision = dict(cfg.get("vision_config") or {})
        vision.update(VISION)
        if "projection_dim" in vision:
            vision["projection_dim"] = VISION["hidden_size"]
        out["vision_config"] = vision
        return out
    if "num_attention_heads" not in cfg or "intermediate_size" not in cfg:
        raise ZooError(
            f"cannot shrink a {cfg.get('model_type')!r} config (no attention heads / MLP width); fix: rehearse LLaMA-style bases"
        )
    return shrink_text(cfg)


def fetch_small_files(repo_id: str, revision: str | None) -> Path:
    """The base's config, tokenizer and processor files at the pinned revision (the real download path)."""
    from zoo.loader import download

    return download(repo_id, revision, SMALL_FILES)


def shrunk_base(repo_id: str, revision: str | None, folder: Path, auto_class: str) -> Path:
    """``folder`` holding the shrunk base (made once; a finished folder is reused)."""
    if (folder / "model.safetensors").exists():
        return folder
    src = fetch_small_files(repo_id, revision)
    with staging(folder) as tmp:
        for p in sorted(src.rglob("*")):
            if p.is_file() and not p.name.endswith(SKIP):
                dest = tmp / p.relative_to(src)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
        cfg_path = tmp / "config.json"
        if not cfg_path.exists():
            raise ZooError(f"{repo_id}@{revision} has no config.json; fix: check base.repo_id / revision")
        cfg = shrink_config(json.loads(cfg_path.read_text()))
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
        _random_weights(tmp, auto_class)
    log.info("rehearsal base for %s@%s in %s", repo_id, revision, folder)
    return folder


def _random_weights(folder: Path, auto_class: str) -> None:
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=False)
    torch.manual_seed(0)
    model = getattr(transformers, auto_class).from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)  # writes config.json back as transformers spells it
    n = sum(p.numel() for p in model.parameters())
    (folder / "rehearsal.json").write_text(json.dumps({"parameters": n, "random_weights": True}) + "\n")
