"""The recipe schema: structure and types only.

Checks that need the registries (is the method known, are these bits supported, does the group size
divide the model) live in ``check.py`` so that they run, and report, even when a structural error
elsewhere in the same file stops pydantic from building a ``Recipe``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator

from zoo.errors import did_you_mean
from zoo.recipe.params import MethodParams

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Recipe names become folder names, Hub repo names and CI matrix values: data, never paths or code.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,95}$")
NAME_RULE = "lower-case letters, digits, '.', '-' and '_', starting with a letter or digit"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name)) and ".." not in name


def _repo_id(v: str | None) -> str | None:
    if v is not None and (not REPO_RE.fullmatch(v) or ".." in v):
        raise ValueError(f"{v!r} is not a Hub repo id of the form owner/name")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSpec(Strict):
    """The unquantized model: a Hub repo at a revision, a local directory, or a built-in tiny base."""

    repo_id: str | None = None
    revision: str | None = None
    path: str | None = None
    builtin: str | None = None
    parameters: float = Field(gt=0, description="size in billions of parameters, for memory planning")
    hidden_size: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0)
    license: str
    license_link: str | None = None

    context_length: int | None = Field(None, gt=0, description="the base's context window, to check sequence lengths")

    _repo = field_validator("repo_id")(_repo_id)

    @property
    def pinned(self) -> bool:
        """Whether the revision is a commit (a branch can move under the same recipe hash)."""
        return self.repo_id is None or bool(self.revision and SHA_RE.fullmatch(self.revision))

    @model_validator(mode="after")
    def _one_source(self) -> BaseSpec:
        given = [k for k in ("repo_id", "path", "builtin") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of repo_id, path, builtin (got {', '.join(given) or 'none'})")
        if self.repo_id is not None and not self.revision:
            raise ValueError("a Hub base needs a pinned `revision` (a commit sha) so builds are reproducible")
        return self


def _number(v: Any) -> Any:
    """Reject non-numbers with one message (pydantic's union error names its internal branches)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("must be a number of bits, such as 4 or 1.1")
    return v


class WeightSpec(Strict):
    bits: int | float = Field(gt=0, le=16)
    group_size: int | Literal["channel"] = 128
    symmetric: bool | None = None

    _bits_number = field_validator("bits", mode="before")(_number)

    @field_validator("group_size")
    @classmethod
    def _group(cls, v: int | str) -> int | str:
        if isinstance(v, int) and (v <= 0 or v & (v - 1)):
            raise ValueError(f"group_size {v} must be a positive power of two, or 'channel'")
        return v


class ActivationSpec(Strict):
    bits: int = Field(gt=0, le=16)

    _bits_number = field_validator("bits", mode="before")(_number)
    dynamic: bool = True
    granularity: Literal["token", "tensor"] = "token"


class CalibrationSpec(Strict):
    dataset: str = "wikitext2"
    path: str | None = None
    split: str = "train"
    samples: int = Field(128, gt=0)
    seqlen: int = Field(2048, gt=0)
    seed: int = 0
    images: str | None = Field(None, description="multimodal only: a folder of images, or 'builtin'")


class EvalSpec(Strict):
    perplexity: list[str] = ["wikitext2", "c4", "ptb"]
    seqlen: int = Field(2048, gt=0)
    tasks: list[str] = []
    task_data: str | None = Field(None, description="folder of local task files, or 'builtin' for zoo's own")
    min_recovery: float | None = Field(None, gt=0, le=100, description="percent, every metric")


WEIGHT_FORMS = ("packed", "fake")


class HubSpec(Strict):
    org: str = "zoo-models"
    repo_id: str | None = None
    private: bool = False
    # what a native method's release publishes (#32): its packed checkpoint, or the 16-bit "fake" one for harnesses
    # that need plain 16-bit weights; other methods publish their one checkpoint either way. Absent when the
    # default, so recipe hashes (and finished builds) stay put; set, it is part of the recipe (a rebuild).
    weights: str = Field("packed", exclude_if=lambda v: v == "packed")

    _repo = field_validator("repo_id")(_repo_id)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        if v not in WEIGHT_FORMS:
            raise ValueError(f"unknown weights form {v!r}" + (did_you_mean(v, WEIGHT_FORMS) or "; use packed or fake"))
        return v

    @field_validator("org")
    @classmethod
    def _org(cls, v: str) -> str:
        if not REPO_RE.fullmatch(f"{v}/x") or ".." in v:
            raise ValueError(f"{v!r} is not a Hub user or organization name")
        return v

    def resolved_repo_id(self, name: str) -> str:
        return self.repo_id or f"{self.org}/{name}"


class CardSpec(Strict):
    template: str | None = None
    summary: str | None = None
    warnings: list[str] = []


class StudySpec(Strict):
    """What Huang et al. 2024 (arXiv 2404.14047) published for this cell, quoted in cards and compared
    against real-weight runs; perplexities are WikiText2 / C4 / PTB at 2048 tokens."""

    wikitext2: float | None = None
    c4: float | None = None
    ptb: float | None = None
    zero_shot_avg: float | None = None
    mmlu_avg: float | None = None
    # where the numbers come from when the study's tables lack the cell (e.g. a method's own paper); cards
    # cite it in place of the study, and tables mark its numbers "(paper)" rather than "(study)"
    source: str | None = Field(None, exclude_if=lambda v: v is None)  # absent, not null: recipe hashes stay put

    def figures(self) -> dict[str, float]:
        """The published numbers alone (``source`` is their citation, not a figure)."""
        return {k: v for k, v in self.model_dump(exclude={"source"}).items() if v is not None}

    @property
    def label(self) -> str:
        return "study" if self.source is None else "paper"


class Recipe(Strict):
    """One published variant, after ``extends`` is resolved."""

    name: str
    description: str | None = None
    family: str
    base: BaseSpec
    method: str
    # The method's own params model (``check.py`` parses the section with it, once); a method reads it
    # typed from its build context.
    params: SerializeAsAny[MethodParams] = Field(default_factory=MethodParams)
    weights: WeightSpec
    activations: ActivationSpec | None = None
    format: str | None = None
    calibration: CalibrationSpec = CalibrationSpec()
    eval: EvalSpec = EvalSpec()
    hub: HubSpec = HubSpec()
    card: CardSpec = CardSpec()
    study: StudySpec = StudySpec()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not valid_name(v):
            raise ValueError(f"a recipe name is {NAME_RULE}")
        return v

    @property
    def repo_id(self) -> str:
        return self.hub.resolved_repo_id(self.name)

    @property
    def base_name(self) -> str:
        """``tiny-llama3`` for built-ins, else the Hub repo id or local path."""
        return self.base.builtin or self.base.repo_id or self.base.path or ""


KEYS = frozenset(Recipe.model_fields) | {"extends"}
