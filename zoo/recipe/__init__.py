"""Recipes: the schema (``schema.py``), reading files with ``extends`` (``load.py``) and the checks
that report every problem at once (``check.py``).

Adding a recipe field: add it to the model in ``schema.py``; if it needs a registry lookup, add the
check to ``check.py`` so ``zoo validate`` reports it alongside every other problem.
"""

from zoo.recipe.load import load_recipe, resolve_file
from zoo.recipe.problem import Problem
from zoo.recipe.schema import Recipe

__all__ = ["Problem", "Recipe", "load_recipe", "resolve_file"]
