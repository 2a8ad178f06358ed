"""Running a packed checkpoint in transformers: the ``zoo`` quant_method.

``register`` adds zoo's config and quantizer to transformers' registries (``register_quantization_config`` /
``register_quantizer``); ``from_pretrained`` on a packed folder then replaces each quantized Linear, before the
weights load, by a ``PackedLinear`` whose buffers are the Linear's packed tensors (all integer: no dtype cast
touches them) and whose forward decodes the 16-bit weight (``codec.decode``, the same code ``zoo unpack`` runs)
and applies it. Memory holds the packed tensors and one decoded weight at a time, unless ``ZOO_PACKED_CACHE=1``
asks each Linear to keep its decoded weight (speed of the fake form, memory of packed + 16-bit: an explicit
trade, never the default). No kernel library decodes these formats exactly (docs/packed.md, "Kernel
libraries"), so the decode is torch.
"""

from __future__ import annotations

import os
from typing import Any

from zoo.packed import FORMAT, codec

# "1": each PackedLinear keeps its decoded 16-bit weight after its first forward, as fast as the fake checkpoint
# from then on, at its memory (packed + 16-bit); read when the model is built. Unset (the default), memory
# holds the packed tensors and one decoded weight at a time.
CACHE_ENV = "ZOO_PACKED_CACHE"


def register() -> None:
    import torch
    from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, register_quantization_config, register_quantizer
    from transformers.quantizers.base import HfQuantizer
    from transformers.utils.quantization_config import QuantizationConfigMixin

    if "zoo" in AUTO_QUANTIZATION_CONFIG_MAPPING:
        return

    @register_quantization_config("zoo")
    class ZooPackedConfig(QuantizationConfigMixin):
        """zoo's packed format: every field of ``quantization_config`` kept as it was written."""

        def __init__(self, **kwargs: Any) -> None:
            self.quant_method = "zoo"  # type: ignore[assignment]  # a third-party method, not in the enum
            self.fields = dict(kwargs)
            self.linears = kwargs.get("linears", {})
            if kwargs.get("format") != FORMAT:
                raise ValueError(f"quant_method zoo: format {kwargs.get('format')!r} is not {FORMAT}")

        def to_dict(self) -> dict[str, Any]:
            return {**self.fields, "quant_method": "zoo"}

        @classmethod
        def from_dict(cls, config_dict: dict[str, Any], return_unused_kwargs: bool = False, **kwargs: Any) -> Any:
            config = cls(**config_dict)
            return (config, kwargs) if return_unused_kwargs else config

    @register_quantizer("zoo")
    class ZooPackedQuantizer(HfQuantizer):
        requires_calibration = True

        def _process_model_before_weight_loading(self, model: Any, **kwargs: Any) -> None:
            linears = getattr(self.quantization_config, "linears", {})
            for name, spec in linears.items():
                parent_name, _, child = name.rpartition(".")
                parent = model.get_submodule(parent_name) if parent_name else model
                old = getattr(parent, child)
                setattr(parent, child, PackedLinear(spec, bias=old.bias))

        def _process_model_after_weight_loading(self, model: Any, **kwargs: Any) -> Any:
            return model

        def is_serializable(self) -> bool:
            return False

        @property
        def is_trainable(self) -> bool:
            return False

    class PackedLinear(torch.nn.Module):
        """A Linear that keeps its packed tensors and decodes its weight in every forward (``cache``: in its
        first, then keeps the 16-bit weight as well)."""

        def __init__(self, spec: dict[str, Any], bias: Any = None) -> None:
            super().__init__()
            self.cache = os.environ.get(CACHE_ENV, "") == "1"
            self.cached: Any = None
            self.spec = {k: v for k, v in spec.items() if k != "tensors"}
            self.names = list(spec["tensors"])
            self.in_features, self.out_features = spec["shape"][1], spec["shape"][0]
            for k, (shape, dtype) in spec["tensors"].items():
                self.register_buffer(k, torch.empty(shape, dtype=getattr(torch, dtype), device="meta"))
            self.bias = bias

        def weight16(self) -> Any:
            """The 16-bit weight the fake checkpoint holds, decoded on this module's device."""
            t = {k: getattr(self, k) for k in self.names}
            return codec.decode(self.spec, t, next(iter(t.values())).device)

        def forward(self, x: Any) -> Any:
            w = self.cached
            if w is None or w.device != x.device:
                w = self.weight16()
                if self.cache:
                    self.cached = w
            return torch.nn.functional.linear(x, w.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    globals()["PackedLinear"] = PackedLinear
