"""Provenance inside the checkpoint: zoo's version, the recipe and its sha256, the base and its commit,
written into every safetensors file's header metadata.

build.json says the same, but it travels beside the weights; a safetensors file copied out of a
release on its own still says where it came from (``safetensors.safe_open(...).metadata()``, or
``zoo pull``, which shows it). The header grows, so each file is rewritten once: the header anew,
then the tensor bytes streamed across unchanged. build.json's own sha256 cannot be among the keys (it
lists these files' hashes, taken after the stamp).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from zoo.parse import load_json
from zoo.workdir import atomic_write

PREFIX = "zoo."
MAX_HEADER = 100 << 20  # safetensors' own limit on a header


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata (``{}`` for anything that is not one)."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER:
                return {}
            header = load_json(f.read(n), MAX_HEADER)  # a pulled file's header: nesting capped too
    except (OSError, struct.error, ValueError):  # LimitError is a ValueError: not a header zoo reads
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def stamp(folder: Path, provenance: dict[str, str]) -> None:
    """Add ``provenance`` (keys prefixed ``zoo.``) to every safetensors header under ``folder``."""
    extra = {f"{PREFIX}{k}": str(v) for k, v in provenance.items()}
    for path in sorted(folder.rglob("*.safetensors")):
        # the fixed temporary name earlier zoo versions used: a leftover (or a link planted there) goes, unfollowed
        path.with_name(f".{path.name}.stamp").unlink(missing_ok=True)
        with open(path, "rb") as src, atomic_write(path) as out:
            (n,) = struct.unpack("<Q", src.read(8))
            header = json.loads(src.read(n))
            header["__metadata__"] = {**(header.get("__metadata__") or {}), **extra}
            data = json.dumps(header, separators=(",", ":")).encode()
            data += b" " * (-len(data) % 8)  # tensors stay 8-byte aligned, as safetensors writes them
            out.write(struct.pack("<Q", len(data)))
            out.write(data)
            shutil.copyfileobj(src, out, 16 << 20)
