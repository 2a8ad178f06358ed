"""What a model family tells the rest of zoo: how to load it and which modules to leave alone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilySpec:
    name: str
    title: str
    auto_class: str
    pipeline_tag: str
    decoder_layer: str
    multimodal: bool
    # compressed-tensors style targets; "re:" entries are regular expressions on module names.
    ignore: tuple[str, ...]
    card: str
    # module-name scope of the language model ("" when the whole model is one), for scoped mappings
    lm_scope: str = ""
