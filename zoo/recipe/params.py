"""The base of every method's parameter model: a recipe's ``params:`` section, typed by its method.

It lives with the recipe schema (which holds a ``MethodParams``) rather than with the methods, so the
schema needs no method; ``recipe/check.py`` picks the method's subclass from the registry and parses
the section once, and the build hands that instance to the method (``BuildContext.params``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MethodParams(BaseModel):
    """Base of each method's own parameters; unknown keys are errors, as in the recipe itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)
