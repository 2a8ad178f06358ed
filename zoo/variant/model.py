"""``Variant``: one catalog recipe with the records of the build beside it, and every fact derived from them.

The records a Variant holds describe one build: ``evaluation`` and ``bench`` only when they measured
that very build.json (``read.py`` drops stale ones), ``push`` the last release made from the workdir
(``published`` says whether it released this build). Each derived fact is computed here once and
read by every renderer: nothing below touches the disk.

What counts as the checkpoint's size is what a release publishes: zoo's packed checkpoint when the
build recorded one (``packed_files``) and the recipe publishes it (``hub.weights``, default
``packed``), the ``model/`` folder otherwise (for a native method that is its 16-bit "fake" form).

A Variant read back from the Hub (``hub.py``) has the same records, from the release's files, and a
``push`` naming that release; ``published`` is then true by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, EvalRecord, PushRecord, RuntimeCheck
from zoo.variant.metrics import ZERO_SHOT_AVG, Metric, metric, perplexity_key
from zoo.variant.points import Point

Status = Literal["not built", "built", "evaluated", "published", "unreadable"]
KV_CONTEXT = 8192  # tokens of one sequence's KV cache in the serving-memory figure (fewer if the model has fewer)
ADAPTER_BASE_BITS = 4.127  # NF4 with double-quantized scales, when the build did not report its own count


def bits_label(recipe: Recipe) -> str:
    """W4 g128, W2 (per channel: no group), W8A8."""
    w = f"W{recipe.weights.bits:g}"
    if recipe.activations:
        return f"{w}A{recipe.activations.bits}"
    return w + ("" if recipe.weights.group_size == "channel" else f" g{recipe.weights.group_size}")


def series(recipe: Recipe) -> str:
    """Method and grouping: W4 per channel and W4 g128 of one method are different curves."""
    from zoo.methods import METHODS

    title = METHODS.get(recipe.method).title
    if recipe.activations:
        return f"{title} (W/A)"
    return f"{title} ({'per channel' if recipe.weights.group_size == 'channel' else f'g{recipe.weights.group_size}'})"


def primary(recipe: Recipe) -> Metric | None:
    """The perplexity a variant leads with and plots: the recipe's first perplexity dataset."""
    ppl = recipe.eval.perplexity
    return metric(perplexity_key(ppl[0])) if ppl else None


@dataclass(frozen=True)
class Memory:
    """Accelerator memory to serve one sequence: the weights as published (``packed``: zoo's packed form,
    decoded layer by layer) plus a bf16 KV cache of ``context`` tokens when the config gives its shape."""

    weights_bytes: int
    kv_bytes: int | None
    context: int
    packed: bool

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + (self.kv_bytes or 0)


@dataclass(frozen=True)
class Variant:
    """What zoo knows about one variant; build it with ``zoo.variant.read``."""

    recipe: Recipe
    build: BuildRecord | None = None
    evaluation: EvalRecord | None = None  # of this build only
    bench: BenchRecord | None = None  # of this build only
    push: PushRecord | None = None  # the last release from here, of this build or an earlier one
    build_sha256: str | None = None  # of build.json's bytes: what eval, bench and push records name
    config: dict[str, Any] | None = None  # the checkpoint's (text) config.json, for the KV cache
    problem: str | None = None  # why its published release could not be read (``zoo.variant.hub``), one plain line

    # --- what the recipe says ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.recipe.name

    @cached_property
    def method_title(self) -> str:
        from zoo.methods import METHODS

        return METHODS.get(self.recipe.method).title

    @property
    def bits(self) -> float:
        return self.recipe.weights.bits

    @cached_property
    def bits_label(self) -> str:
        return bits_label(self.recipe)

    @property
    def weight_only(self) -> bool:
        """W/A variants sit on another axis of cost: the quality-vs-weight-bits plots leave them out."""
        return not self.recipe.activations

    @cached_property
    def series(self) -> str:
        return series(self.recipe)

    @cached_property
    def primary(self) -> Metric | None:
        return primary(self.recipe)

    # --- status -----------------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.build is not None

    @property
    def evaluated(self) -> bool:
        return self.evaluation is not None

    @property
    def published(self) -> bool:
        """Whether the last release from this workdir is of this very build."""
        return self.push is not None and self.build is not None and self.push.build_sha256 == self.build_sha256

    @cached_property
    def repo_url(self) -> str | None:
        """The pushed repo's page, for a renderer to link: only an ``http(s):`` URL on the endpoint it was pushed
        to (a push.json is a file anyone with the workdir can edit: no ``javascript:``, no userinfo)."""
        if self.push is None:
            return None
        from zoo.untrusted import link

        return link(f"{self.push.endpoint.rstrip('/')}/{self.push.repo_id}", self.push.endpoint)

    @property
    def status(self) -> Status:
        """The one word for where it stands; "unreadable": not built here, and its release on the Hub failed a check."""
        if self.published:
            return "published"
        if self.problem is not None and not self.built:
            return "unreadable"
        return "evaluated" if self.evaluated else "built" if self.built else "not built"

    @property
    def limited(self) -> bool:
        """A quick run (``zoo eval --limit``): its numbers are shown, and marked, wherever they appear."""
        return bool(self.evaluation and self.evaluation.limit)

    # --- measured and published numbers -----------------------------------------------------------
    def value(self, key: str | None) -> float | None:
        """What zoo measured for ``key`` on this build; None when not measured."""
        return self.evaluation.metrics.get(key) if self.evaluation and key else None

    def base_value(self, key: str | None) -> float | None:
        return self.evaluation.baseline.metrics.get(key) if self.evaluation and key else None

    def recovery(self, key: str | None) -> float | None:
        """eval.json's recovery of ``key``, % of the 16-bit base; None unless the value itself was measured."""
        if self.value(key) is None or self.evaluation is None or key is None:
            return None
        return self.evaluation.recovery.get(key)

    def study(self, key: str | None) -> float | None:
        """The study's (or the method's paper's) published number for ``key``; None when it has none."""
        if key is None:
            return None
        if key == ZERO_SHOT_AVG:
            return self.recipe.study.zero_shot_avg
        m = metric(key)
        value = getattr(self.recipe.study, m.name, None) if m.is_perplexity else None
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def study_label(self) -> str:
        """The tag of a published number: "study", or "paper" for a cell only the method's own paper has."""
        return self.recipe.study.label

    # --- the checkpoint ---------------------------------------------------------------------------
    @property
    def packed(self) -> bool:
        """Whether a release of this build is zoo's packed checkpoint (#32) rather than ``model/``."""
        return bool(self.build and self.build.publishes_packed)

    @property
    def size_bytes(self) -> int | None:
        """Bytes on disk of what a release publishes (the packed form when ``packed``)."""
        if self.build is None:
            return None
        return (self.build.packed_bytes or self.build.total_bytes) if self.packed else self.build.total_bytes

    @cached_property
    def stored_bits(self) -> float | None:
        """Bits per base parameter that the published checkpoint takes on disk, everything included."""
        size, params = self.size_bytes, self.recipe.base.parameters
        return size * 8 / (params * 1e9) if size is not None and params else None

    @cached_property
    def reported_bits(self) -> float | None:
        """The method's own count of bits per weight (codes and their metadata), when it reports one."""
        reported = self.build.method.get("bits_per_weight") if self.build else None
        return float(reported) if isinstance(reported, (int, float)) else None

    @cached_property
    def memory(self) -> Memory | None:
        """Serving memory (see ``Memory``); None before a build. An adapter's weights are its NF4 base
        (parameters x the measured bits per weight) plus itself; its folder holds no config of the base,
        so its KV cache is left out."""
        size = self.size_bytes
        if size is None or self.build is None:
            return None
        text = self.config or {}
        layers, heads = text.get("num_hidden_layers"), text.get("num_attention_heads")
        kv_heads = text.get("num_key_value_heads") or heads
        hidden = text.get("hidden_size")
        head_dim = text.get("head_dim") or (hidden // heads if heads and hidden else None)
        positions = text.get("max_position_embeddings")
        context = min(KV_CONTEXT, positions) if isinstance(positions, int) and positions > 0 else KV_CONTEXT
        kv = 2 * layers * kv_heads * head_dim * 2 * context if layers and kv_heads and head_dim else None
        weights = size
        if self.recipe.format == "adapter":
            bits = self.reported_bits or ADAPTER_BASE_BITS
            weights += int(self.recipe.base.parameters * 1e9 * bits / 8)
        return Memory(weights, kv, context, self.packed)

    @property
    def served_by(self) -> tuple[RuntimeCheck, ...]:
        """The runtimes ``zoo bench`` saw serve this build (none claimed without bench.json). zoo bench loads
        ``model/``: for a packed release that is the 16-bit form ``zoo pull --unpack`` writes."""
        return tuple(c for c in self.bench.runtimes if c.serves) if self.bench else ()

    # --- plots ------------------------------------------------------------------------------------
    def measured_point(self, key: str | None = None) -> Point | None:
        """This build's perplexity (``key``, default the primary) at its weight bits; None when unmeasured."""
        key = key or (self.primary.key if self.primary else None)
        value = self.value(key)
        if value is None or value <= 0 or not self.weight_only:
            return None
        return Point(self.name, self.series, self.bits, value, self.recovery(key), True, self.limited)

    def study_point(self, key: str | None = None) -> Point | None:
        """The study's perplexity at this variant's weight bits; None when it published none."""
        key = key or (self.primary.key if self.primary else None)
        value = self.study(key)
        if value is None or value <= 0 or not self.weight_only:
            return None
        return Point(self.name, self.series, self.bits, value, None, False, False)
