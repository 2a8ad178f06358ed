"""Calibration samples: random token windows of a dataset split, as GPTQ and the study draw them.

``samples`` windows of ``seqlen`` tokens start at uniformly random offsets into the tokenized split
(``random.Random(seed)``), so the same recipe and tokenizer always give the same ids. Tokenizing
WikiText2 takes a while, so token ids are cached under the zoo cache by text and tokenizer hash.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.data.text import load_text
from zoo.errors import ZooError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    windows: list[list[int]]
    identity: dict[str, Any]
    images: list[Any] | None = None  # multimodal: one image per window, in turn


def tokenizer_sha(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(blob.encode()).hexdigest()


def token_ids(text: str, tokenizer: Any) -> list[int]:
    """All token ids of ``text`` (no special tokens), cached by text and tokenizer content."""
    import torch

    from zoo.tiny.bases import cache_root

    text_sha = hashlib.sha256(text.encode()).hexdigest()
    key = hashlib.sha256(f"{text_sha}:{tokenizer_sha(tokenizer)}".encode()).hexdigest()[:32]
    path = cache_root() / "tokens" / f"{key}.pt"
    if path.exists():
        try:  # tensors only: a cache file is never code; a damaged one is rebuilt
            ids: list[int] = torch.load(path, weights_only=True).tolist()
            return ids
        except Exception as e:  # noqa: BLE001 - any unreadable cache entry means "tokenize again"
            log.warning("token cache %s is unreadable (%s); tokenizing again", path, type(e).__name__)
    log.info("tokenizing %d characters", len(text))
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    from zoo.workdir import atomic_write

    with atomic_write(path) as f:
        torch.save(torch.tensor(ids, dtype=torch.int32), f)
    return ids


def draw(ids: list[int], samples: int, seqlen: int, seed: int) -> list[list[int]]:
    if len(ids) <= seqlen:
        raise ZooError(
            f"calibration text has {len(ids)} tokens, fewer than one window of {seqlen}; fix: lower calibration.seqlen"
        )
    rng = random.Random(seed)
    starts = [rng.randint(0, len(ids) - seqlen - 1) for _ in range(samples)]
    return [ids[s : s + seqlen] for s in starts]


def calibration(spec: Any, tokenizer: Any, recipe_dir: Path | None = None) -> Calibration:
    """Windows for a recipe's ``calibration`` section, with their identity for build.json."""
    path = Path(spec.path) if spec.path else None
    if path is not None and recipe_dir is not None and not path.is_absolute():
        path = recipe_dir / path
    text = load_text(spec.dataset, spec.split, path)
    ids = token_ids(text.text, tokenizer)
    windows = draw(ids, spec.samples, spec.seqlen, spec.seed)
    h = hashlib.sha256()
    for w in windows:
        h.update(b",".join(str(i).encode() for i in w) + b";")
    identity = {
        **text.identity,
        "samples": spec.samples,
        "seqlen": spec.seqlen,
        "seed": spec.seed,
        "tokens_sha256": h.hexdigest(),
    }
    if spec.images is None:
        return Calibration(windows, identity)
    from zoo.data.images import load_images

    images, image_identity = load_images(spec.images, recipe_dir, min(spec.samples, 16), spec.seed)
    return Calibration(windows, {**identity, "images": image_identity}, images)
