"""``zoo export NAME --to FORMAT``: a build in another runtime's format, only where it holds the same weights.

A study cell's name stands for its numbers, so an export is written only when every weight of the file
decodes to the build's own, bit for bit; where a format cannot hold a build exactly, zoo refuses with the
tensor and the reason and writes nothing (it never quantizes again under the cell's name).

Here: ``source`` reads a compressed-tensors build as integer codes, scales and zero points and is zoo's
reference decode; ``gguf`` (with ``gguf_blocks``) and ``mlx`` are the formats; ``run`` is the stage
(lock, checks, staging folder, proof, ``export.json``: ``zoo.records.ExportRecord``). docs/serving.md#exports says which
schemes map to which types and why.

Adding a format: a module with ``plan(src) -> plan`` (raise ValueError naming the tensor that does not map)
and ``export(src, plan, folder, name) -> (types, exactness)`` (write into ``folder``, read it back with the
format's own reader, raise ValueError if any tensor differs), and one row in ``FORMATS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    module: str  # holds plan() and export()
    needs: tuple[str, ...]  # packages the export imports (installed by the extra named in ``extra``)
    extra: str
    runtime: str  # who loads the result


FORMATS: dict[str, Format] = {
    "gguf": Format("gguf", "zoo.export.gguf", ("gguf",), "export", "llama.cpp (llama-cpp-python, ollama, LM Studio)"),
    "mlx": Format("mlx", "zoo.export.mlx", (), "export", "mlx-lm on Apple silicon (mlx's Linux CPU build too)"),
}
