"""Model families, one file each, registered in ``FAMILIES`` below.

Adding a family: write ``zoo/families/<name>.py`` with ``SPEC = FamilySpec(...)`` and add one line here.
"""

from __future__ import annotations

from zoo.families.base import FamilySpec
from zoo.registry import Registry

FAMILIES: Registry[FamilySpec] = Registry(
    "family",
    {
        "llama3": "zoo.families.llama3",
        "llava-next": "zoo.families.llava_next",
    },
)

__all__ = ["FAMILIES", "FamilySpec"]
