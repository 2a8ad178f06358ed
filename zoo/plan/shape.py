"""A base's shape, from its config, without downloading or importing torch.

The study's bases ship their ``config.json`` (at the revisions ``recipes/_base/*.yaml`` pin) inside
zoo (``zoo/plan/configs/``), so ``zoo plan`` answers offline, before any weights are fetched. A
built-in tiny base reads its own config; a local ``base.path`` reads the folder's. A Hub base at another
revision is read from the HF cache when it is there, else refused with the fix.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UsageError
from zoo.untrusted import plain

if TYPE_CHECKING:
    from zoo.recipe import Recipe

CONFIGS = Path(__file__).parent / "configs"
MAX_CONFIG_BYTES = 1 << 20
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class Shape:
    """What memory depends on: the decoder's sizes, the vocabulary, and the vision tower (LLaVA-Next)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    dtype_bytes: int
    tied: bool
    vision_params: int = 0
    image_tokens: int = 0  # the most tokens one image becomes (anyres: the base view plus every tile)
    source: str = ""

    @property
    def layer_linear_params(self) -> int:
        """The seven Linear layers of one decoder layer (q, k, v, o, gate, up, down)."""
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        return self.hidden * q * 2 + self.hidden * kv * 2 + 3 * self.hidden * self.intermediate

    @property
    def linear_inputs(self) -> tuple[int, ...]:
        """in_features of each of one layer's Linear layers: a Hessian is in_features^2 for each."""
        return (self.hidden,) * 4 + (self.heads * self.head_dim,) + (self.hidden,) + (self.intermediate,)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def params(self) -> int:
        per_layer = self.layer_linear_params + 2 * self.hidden
        return self.layers * per_layer + self.embedding_params + self.hidden + self.vision_params

    def kv_bytes(self, tokens: int, dtype_bytes: int) -> int:
        """The KV cache of ``tokens`` tokens through every layer."""
        return tokens * self.layers * 2 * self.kv_heads * self.head_dim * dtype_bytes


def _read(path: Path) -> dict[str, Any]:
    from zoo.parse import LimitError, load_json

    try:
        data = load_json(path.read_bytes(), MAX_CONFIG_BYTES)
    except (LimitError, ValueError, OSError) as e:
        raise UsageError(f"cannot read {plain(path)} ({plain(e)}); fix: point the recipe at a saved model folder") from None
    if not isinstance(data, dict):
        raise UsageError(f"{plain(path)} is not a JSON object; fix: point the recipe at a saved model folder")
    return data


def _shipped(repo_id: str, revision: str | None) -> dict[str, Any] | None:
    path = CONFIGS / (repo_id.replace("/", "--") + ".json")
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if data["_zoo"]["revision"] == revision else None


def _cached(repo_id: str, revision: str | None) -> dict[str, Any] | None:
    """The config.json from the HF cache (no network): a base already downloaded once."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a base dependency
        return None
    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return _read(Path(found)) if isinstance(found, str) else None


def _tiny_llava() -> dict[str, Any]:
    """tiny-llava-next is assembled on first use; its config is tiny-llama3's plus the vision tower's."""
    from zoo.tiny.bases import HERE, IMAGE_SIZE, PATCH, PINPOINTS

    text = _read(HERE / "tiny-llama3" / "config.json")
    vision = {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "image_size": IMAGE_SIZE, "patch_size": PATCH}
    return {"text_config": text, "vision_config": vision, "image_grid_pinpoints": PINPOINTS, "torch_dtype": text.get("dtype")}


def config_for(recipe: Recipe, recipe_dir: Path) -> tuple[dict[str, Any], str]:
    """The base's config and where it came from."""
    b = recipe.base
    if b.builtin:
        from zoo.tiny.bases import HERE

        if b.builtin == "tiny-llava-next":
            return _tiny_llava(), "built-in tiny-llava-next"
        return _read(HERE / b.builtin / "config.json"), f"built-in {b.builtin}"
    if b.path:
        path = (recipe_dir / b.path).expanduser() / "config.json"
        if not path.is_file():
            raise UsageError(f"local base {plain(path.parent)} has no config.json; fix: base.path must be a saved model folder")
        return _read(path), str(path)
    repo = b.repo_id or ""
    found = _shipped(repo, b.revision)
    if found is not None:
        return found, f"{repo}@{b.revision} (shipped with zoo)"
    found = _cached(repo, b.revision)
    if found is not None:
        return found, f"{repo}@{b.revision} (HF cache)"
    raise UsageError(
        f"{recipe.name}: zoo has no config for {plain(repo)}@{plain(b.revision)} and it is not in the HF cache; "
        "fix: download it once (hf download REPO config.json --revision REV), or point base.path at a local copy"
    )


def _vision(config: dict[str, Any]) -> tuple[int, int]:
    """(parameters of the vision tower and projector, most tokens per image)."""
    v = config.get("vision_config")
    if not isinstance(v, dict):
        return 0, 0
    h, i, n = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["num_hidden_layers"])
    size, patch = int(v["image_size"]), int(v["patch_size"])
    grid = (size // patch) ** 2
    text_hidden = int(config["text_config"]["hidden_size"])
    tower = n * (4 * h * h + 2 * h * i + 9 * h + i) + 3 * patch * patch * h + (grid + 1) * h
    projector = h * text_hidden + text_hidden * text_hidden + 2 * text_hidden
    points = config.get("image_grid_pinpoints") or [[size, size]]
    tiles = max(math.ceil(a / size) * math.ceil(b / size) for a, b in points)
    rows = max(math.ceil(a / size) for a, _ in points) * (size // patch)  # one newline token per row of the tiles
    return tower + projector, (1 + tiles) * grid + rows


def shape(recipe: Recipe, recipe_dir: Path) -> Shape:
    config, source = config_for(recipe, recipe_dir)
    raw = config.get("text_config")
    text: dict[str, Any] = raw if isinstance(raw, dict) else config
    try:
        hidden, heads = int(text["hidden_size"]), int(text["num_attention_heads"])
        named = [config.get("torch_dtype"), config.get("dtype"), text.get("torch_dtype"), text.get("dtype")]
        dtype = str(next((d for d in named if d), "bfloat16"))
        vision, image_tokens = _vision(config)
        return Shape(
            hidden=hidden,
            intermediate=int(text["intermediate_size"]),
            layers=int(text["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=int(text.get("head_dim") or hidden // heads),
            vocab=int(text["vocab_size"]),
            max_positions=int(text.get("max_position_embeddings") or 2048),
            dtype_bytes=DTYPE_BYTES.get(dtype, 2),
            tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
            vision_params=vision,
            image_tokens=image_tokens,
            source=source,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(
            f"{recipe.name}: the base's config ({plain(source)}) lacks {plain(e)}; fix: use a LLaMA-shaped base"
        ) from None
