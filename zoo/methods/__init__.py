"""Quantization methods, one file each, registered in ``METHODS`` below.

Adding a method: write ``zoo/methods/<name>.py`` with a ``MethodParams`` subclass and a
``SPEC = MethodSpec(...)`` (set ``builder`` once it can quantize), add one line here, and add its
recipes under ``recipes/``. Tests parametrized over this table pick it up.
"""

from __future__ import annotations

from zoo.methods.base import MethodParams, MethodSpec  # MethodParams: zoo.recipe.params, re-exported
from zoo.registry import Registry

METHODS: Registry[MethodSpec] = Registry(
    "method",
    {
        "rtn": "zoo.methods.rtn",
        "gptq": "zoo.methods.gptq",
        "awq": "zoo.methods.awq",
        "smoothquant": "zoo.methods.smoothquant",
        "quip": "zoo.methods.quip",
        "pbllm": "zoo.methods.pbllm",
        "billm": "zoo.methods.billm",
        "dbllm": "zoo.methods.dbllm",
        "slimllm": "zoo.methods.slimllm",
        "qlora": "zoo.methods.qlora",
        "irqlora": "zoo.methods.irqlora",
    },
)

__all__ = ["METHODS", "MethodParams", "MethodSpec"]
