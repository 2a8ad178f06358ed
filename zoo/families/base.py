"""What a model family tells the rest of zoo: how to load it and which modules to leave alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    # attribute path from the loaded model to its decoder stack (the module holding ``layers``)
    lm_path: str = "model"

    def language_model(self, model: Any) -> Any:
        """The decoder stack (embeddings, ``layers``, norm) of a model of this family."""
        return model.get_submodule(self.lm_path)

    def decoder_layers(self, model: Any) -> Any:
        return self.language_model(model).layers
