"""Which recipe a build is of: the recipe's hash, and the checks every later stage makes with it.

Beside the records because that is what they are compared with: build.json stores the hash it was built
from, and eval, bench, card and push refuse a build of another recipe (edited since) rather than describe
the recipe next to another build's numbers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import NotReadyError
from zoo.records.build import BuildRecord
from zoo.workdir import Layout

if TYPE_CHECKING:
    from zoo.recipe import Recipe


def recipe_sha256(recipe: Recipe) -> str:
    """The hash of the recipe as parsed (defaults filled in), so formatting and comments never change it."""
    blob = json.dumps(recipe.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def check_recipe(recipe: Recipe, build: BuildRecord, folder: Path) -> None:
    """Later stages describe the recipe next to the build's numbers: the build must be of this recipe."""
    if build.recipe_sha256 != recipe_sha256(recipe):
        raise NotReadyError(f"{recipe.name}: the build in {folder} is of an older recipe; fix: zoo build {recipe.name}")


def is_built(recipe: Recipe, layout: Layout) -> BuildRecord | None:
    """The finished build record for this exact recipe, if the checkpoint is still intact."""
    record = BuildRecord.read(layout)
    if record is None or record.recipe_sha256 != recipe_sha256(recipe) or not record.intact(layout):
        return None
    return record
