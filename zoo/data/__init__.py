"""Datasets by name: calibration sets and perplexity texts.

``DATASETS`` maps a recipe's dataset name to where it comes from. Hub datasets load through
``datasets`` on machines that reach the Hub; ``pydoc`` is CPython's own documentation text, present
on every machine, used by the tiny bases; ``file`` reads a local .txt or .jsonl given by ``path``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str
    description: str


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec("wikitext2", "wikitext/wikitext-2-raw-v1", "WikiText-2 raw (the study's calibration set)"),
        DatasetSpec("c4", "allenai/c4", "C4 English, GPTQ's shard and validation subset"),
        DatasetSpec("ptb", "ptb-text-only/ptb_text_only", "Penn Treebank text"),
        DatasetSpec("pydoc", "pydoc_data.topics", "CPython's documentation topics (PSF license), ships with Python"),
        DatasetSpec("file", "local", "a local .txt or .jsonl file given by `path`"),
    )
}
