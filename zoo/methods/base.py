"""What every method file declares: its parameter model and what it supports.

A method's ``SPEC`` is pure data (no torch import) so recipes can be validated and listed anywhere.
``builder`` names the function that quantizes (``"module:function"``); it is ``None`` while the
method is in the catalog but not implemented yet, which ``zoo list`` shows as not buildable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from zoo.recipe.params import MethodParams

__all__ = ["BuildContext", "MethodParams", "MethodSpec"]

if TYPE_CHECKING:  # types only (the build hands these over; methods never load them)
    from zoo.data.calibration import Calibration
    from zoo.families.base import FamilySpec
    from zoo.recipe.schema import Recipe


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    paper: str
    params: type[MethodParams]
    weight_bits: tuple[float, ...]
    grouped: bool = True
    per_channel: bool = True
    symmetric: bool = False
    activation_bits: tuple[int, ...] = ()
    formats: tuple[str, ...] = ("compressed-tensors",)
    builder: str | None = None
    calibrated: bool = True  # needs calibration data (RTN does not)
    group_sizes: tuple[int, ...] = ()  # when set, the only block sizes the method has (NF4: 64)
    text_only: bool = False  # implemented for text-only families
    notes: tuple[str, ...] = field(default=())

    @property
    def fidelity(self) -> str:
        """How this implementation differs from the authors' (``zoo/fidelity.py``); empty: it is theirs."""
        from zoo.fidelity import fidelity

        return fidelity(self.name)

    @property
    def buildable(self) -> bool:
        return self.builder is not None

    @property
    def needs_activations(self) -> bool:
        return bool(self.activation_bits)


P = TypeVar("P", bound=MethodParams)


@dataclass(frozen=True)
class BuildContext(Generic[P]):
    """Everything a method's ``quantize`` gets; it writes the checkpoint into ``out``.

    ``params`` is the recipe's ``params`` as the method's own model (parsed once, when the recipe was
    loaded): a method declares ``quantize(ctx: BuildContext[GPTQParams])`` and reads ``ctx.params``."""

    recipe: Recipe
    params: P
    family: FamilySpec
    base_path: Path  # the base's files on this machine
    load_model: Callable[[], Any]  # the base on the host (layers are onloaded one at a time)
    processor: Any  # the tokenizer, or the processor for multimodal families
    calibration: Calibration | None  # None for data-free methods
    device: str  # "cuda" or "cpu": where layers are computed
    out: Path  # a staging folder, renamed to ``<workdir>/<name>/model`` when the method returns
    recipe_dir: Path  # where the recipe's relative paths (data files) are resolved
    state_dir: Path  # survives an interrupted build: resumable state (training checkpoints)
    host_memory: int | None = None  # ``--host-memory`` in bytes: what the build may hold on the host

    @property
    def max_shard_bytes(self) -> int:
        """Checkpoint shard size: saving gathers one shard at a time onto the host, so under a host-memory
        cap a shard is at most a quarter of it (at least 64 MB); otherwise the usual 4 GB."""
        if self.host_memory is None:
            return 4 * 10**9
        return max(64 * 10**6, min(4 * 10**9, self.host_memory // 4))

    @property
    def data(self) -> Calibration:
        """The calibration data of a calibrated method (the build stage draws it whenever ``calibrated``)."""
        if self.calibration is None:
            raise TypeError(f"{self.recipe.method} asked for calibration data but its spec says calibrated=False")
        return self.calibration
