"""Where the built-in tiny bases live on disk.

``tiny-llama3`` ships ready in the package, and so does ``tiny-llama3-outliers``, the same model with
LLaMA-3-like heavy-tailed weights (``zoo/tiny/outliers.py`` made it), on which 2-bit collapses as the
study's LLaMA3-8B does. ``tiny-llava-next`` would repeat tiny-llama3's weights as
its language model, so only its vision tower and projector ship; the full checkpoint is assembled
once into the zoo cache (written under a temporary name, then renamed) and reused after that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SHIPPED = ("tiny-llama3", "tiny-llama3-outliers")  # ready in the package, loaded from where they lie
BUILTIN_BASES = (*SHIPPED, "tiny-llava-next")
IMAGE_SIZE = 32
PATCH = 8
PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]


def cache_root() -> Path:
    """The zoo's cache: ``$ZOO_CACHE``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "zoo"


def llava_config(llama_dir: Path) -> Any:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig

    text = LlamaConfig.from_pretrained(llama_dir)
    vocab = json.loads((llama_dir / "tokenizer.json").read_text())["added_tokens"]
    image_id = next(t["id"] for t in vocab if t["content"] == "<image>")
    vision = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        projection_dim=64,
    )
    return LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_id,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )


def _fingerprint(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _assemble_llava(dest: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, LlavaNextImageProcessorPil, LlavaNextProcessor

    llama = HERE / "tiny-llama3"
    state = {
        ("lm_head.weight" if k == "lm_head.weight" else k.replace("model.", "model.language_model.", 1)): v
        for k, v in load_file(str(llama / "model.safetensors")).items()
    }
    state.update(load_file(str(HERE / "tiny-llava-next" / "vision.safetensors")))
    config = llava_config(llama)
    config.dtype = torch.bfloat16
    config.save_pretrained(dest)
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(llama / "generation_config.json", dest / "generation_config.json")
    tokenizer = AutoTokenizer.from_pretrained(llama)
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=PINPOINTS,
    )
    LlavaNextProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
    ).save_pretrained(dest)


def builtin_path(name: str) -> Path:
    """The directory a built-in base loads from with ``from_pretrained``."""
    if name in SHIPPED:
        return HERE / name
    if name != "tiny-llava-next":
        raise KeyError(name)
    parts = [HERE / "tiny-llama3" / "model.safetensors", HERE / "tiny-llava-next" / "vision.safetensors"]
    dest = cache_root() / "bases" / f"tiny-llava-next-{_fingerprint(*parts)}"
    if not (dest / "model.safetensors").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-llava-next-", dir=dest.parent))
        try:
            _assemble_llava(tmp)
            os.replace(tmp, dest) if not dest.exists() else shutil.rmtree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest
