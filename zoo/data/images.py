"""Calibration images for multimodal families (LLaVA-Next): a folder of image files, or ``builtin``:
small deterministic pictures zoo draws itself, so tiny builds calibrate image-text on any machine.

Each calibration sample pairs one image (in turn) with one text window; the processor expands the
``<image>`` placeholder into the image's tokens, so a sample is the image tokens plus the window.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _builtin(count: int, seed: int) -> list[Any]:
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    images = []
    for _ in range(count):
        w, h = rng.choice([32, 48, 64, 96]), rng.choice([32, 48, 64, 96])
        img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.randrange(w // 2), rng.randrange(h // 2)
            box = (x0, y0, x0 + rng.randrange(4, w // 2 + 4), y0 + rng.randrange(4, h // 2 + 4))
            draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
        images.append(img)
    return images


def load_images(source: str, recipe_dir: Path | None, count: int, seed: int) -> tuple[list[Any], dict[str, Any]]:
    """The images and their identity (source, count, sha256 over their pixels)."""
    from PIL import Image

    if source == "builtin":
        images = _builtin(count, seed)
    else:
        folder = Path(source) if Path(source).is_absolute() or recipe_dir is None else recipe_dir / source
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []
        if not files:
            raise ZooError(
                f"no calibration images ({', '.join(SUFFIXES)}) in {folder}; fix: set calibration.images to a folder of images"
            )
        images = [Image.open(p).convert("RGB") for p in files]
    h = hashlib.sha256()
    for img in images:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        h.update(buf.getvalue())
    return images, {"source": source, "count": len(images), "sha256": h.hexdigest()}


def image_text_rows(processor: Any, tokenizer: Any, windows: list[list[int]], images: list[Any]) -> list[dict[str, Any]]:
    """One processor output per window, with the images taken in turn."""
    rows = []
    for i, window in enumerate(windows):
        text = "<image>\n" + tokenizer.decode(window)
        x = processor(images=images[i % len(images)], text=text, return_tensors="pt")
        rows.append({k: v[0].tolist() for k, v in x.items()})
    return rows


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch of one (samples differ in length and image size): tensors with a batch dimension."""
    import torch

    (row,) = batch
    return {k: torch.tensor(v).unsqueeze(0) for k, v in row.items()}
