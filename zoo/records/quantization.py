"""``quantization.json`` inside a checkpoint: which method made it, in which form, and the method's scheme.

It travels with the weights (a release publishes it; ``zoo.lora.load`` reads an adapter's to rebuild the
quantized base), so unlike build.json it is the method's to fill. One writer gives every method the same
head, ``method`` then ``format`` (``fake``: 16-bit dequantized weights; ``adapter``: LoRA on an NF4 base),
and the same atomic write; what follows is the method's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.workdir import read_json, write_json

FILE = "quantization.json"


def write_quantization(folder: Path, method: str, form: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Write ``folder/quantization.json`` (atomically) and return what was written."""
    clash = {"method", "format"} & set(fields)
    if clash:
        raise ValueError(f"quantization.json: {', '.join(sorted(clash))} is the writer's to set")
    record = {"method": method, "format": form, **fields}
    write_json(folder / FILE, record)
    return record


def read_quantization(folder: Path) -> dict[str, Any] | None:
    """``folder``'s quantization.json; None when missing or unreadable."""
    return read_json(folder / FILE)
