"""One row per catalog variant, as the site shows it: what zoo measured beside what the study published,
rendered from the read model (``zoo.variant``): the workdir's variants, merged with every published
one when ``zoo site`` read the Hub (``zoo.variant.hub``).

The site's rules, which are presentation and so live here: the study's figure sits in its own column
(it never stands in for a measurement), a quick run's number is marked, sizes and memory of a packed
release say so. Sort keys are kept apart from display text so a column of "not evaluated" cells still
sorts (missing values last). These rows are also what ``variants.json`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.recipe import Recipe
from zoo.variant.metrics import ZERO_SHOT_AVG
from zoo.variant.model import Variant
from zoo.variant.points import Point
from zoo.variant.read import read, read_all
from zoo.variant.text import fmt, packed, pct, quick
from zoo.workdir import size_text

if TYPE_CHECKING:
    from zoo.variant.hub import Published


@dataclass(frozen=True)
class Family:
    """One base's page: its variants' rows, in table order, and its chart's points."""

    base: str
    slug: str  # the page's file name, without .html
    rows: tuple[dict[str, Any], ...]
    points: tuple[Point, ...] = ()

    @property
    def built(self) -> int:
        return sum(r["built"] for r in self.rows)

    @property
    def evaluated(self) -> int:
        return sum(r["evaluated"] for r in self.rows)

    @property
    def published(self) -> int:
        return sum(r["status"] == "published" for r in self.rows)


def slug(base: str) -> str:
    return base.replace("/", "--").lower()


def _published(v: Variant, value: float | None) -> str:
    """A published number; one from another paper than the study (``study.source``) is marked "(paper)"."""
    if value is None:
        return ""
    return fmt(value) if v.study_label == "study" else f"{fmt(value)} ({v.study_label})"


def cells(v: Variant) -> dict[str, Any]:
    """The site's row of one Variant."""
    key = v.primary.key if v.primary else None
    ppl, acc = v.value(key), v.value(ZERO_SHOT_AVG)
    ppl_recovery, acc_recovery = v.recovery(key), v.recovery(ZERO_SHOT_AVG)
    memory, size = v.memory, v.size_bytes
    study_ppl = v.study(key)
    return {
        "name": v.name,
        "method": v.method_title,
        "series": v.series,
        "bits": v.bits,
        "bits_label": v.bits_label,
        "meta_bits": v.reported_bits,
        "meta_bits_text": f"{v.reported_bits:.2f}" if v.reported_bits is not None else "",
        "stored_bits": v.stored_bits,
        "stored_bits_text": f"{v.stored_bits:.2f}" if v.stored_bits is not None else "",
        "status": v.status,
        "problem": v.problem,  # why its release on the Hub could not be read (one plain line), else None
        "built": v.built,
        "evaluated": v.evaluated,
        "packed": v.packed,
        "size_bytes": size,
        "size_text": packed(size_text(size), v.packed) if size is not None else "not built",
        "memory_bytes": memory.total_bytes if memory else None,
        "memory_text": packed(size_text(memory.total_bytes), memory.packed) if memory else "",
        "ppl_name": v.primary.name if v.primary else "",
        "ppl": ppl,
        "ppl_text": quick(fmt(ppl), v.limited) if ppl is not None else "not evaluated",
        "ppl_recovery": ppl_recovery,
        "ppl_recovery_text": pct(ppl_recovery),
        "acc": acc,
        "acc_text": quick(fmt(acc), v.limited) if acc is not None else "not evaluated",
        "acc_recovery": acc_recovery,
        "acc_recovery_text": pct(acc_recovery),
        "study_ppl": study_ppl,
        "study_ppl_text": _published(v, study_ppl),
        "study_acc": v.study(ZERO_SHOT_AVG),
        "study_acc_text": _published(v, v.study(ZERO_SHOT_AVG)),
        "limited": v.limited,
        "repo_id": v.push.repo_id if v.push else v.recipe.repo_id,
        "url": v.repo_url,
        **_bench_cells(v),
    }


def row(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """One recipe's row, read from ``workdir``."""
    return cells(read(recipe, workdir))


def _bench_cells(v: Variant) -> dict[str, Any]:
    """zoo bench's columns: runtimes that served this build, and the speed and memory ratios to the 16-bit base
    (vLLM's when it serves the build, else transformers'; the runtime and device are named in the cell). zoo
    bench loads model/: for a packed release, the 16-bit form, which the cell says."""
    if v.bench is None:
        return {"runtimes_text": "not checked", "decode_ratio": None, "decode_ratio_text": "", "memory_ratio": None,
                "memory_ratio_text": ""}  # fmt: skip
    ok = list(v.served_by)
    names = ", ".join(f"{'vLLM' if c.runtime == 'vllm' else c.runtime} ({c.device})" for c in ok) or "none"
    if ok and v.packed:
        names += " (its 16-bit form)"
    timed = sorted((c for c in ok if "variant" in c.speed and "base" in c.speed), key=lambda c: c.runtime != "vllm")
    decode = memory = None
    where = ""
    if timed:
        c, mine, base = timed[0], timed[0].speed["variant"], timed[0].speed["base"]
        where = f" ({'vLLM' if c.runtime == 'vllm' else c.runtime}, {c.device})"
        decode = mine.decode_tokens_per_s_b1 / base.decode_tokens_per_s_b1 if base.decode_tokens_per_s_b1 else None
        if mine.peak_memory_bytes and base.peak_memory_bytes:
            memory = mine.peak_memory_bytes / base.peak_memory_bytes
    return {
        "runtimes_text": names,
        "decode_ratio": decode,
        "decode_ratio_text": f"{decode:.2f}x{where}" if decode is not None else "",
        "memory_ratio": memory,
        "memory_ratio_text": f"{memory:.2f}x{where}" if memory is not None else "",
    }


def families(catalog: list[Recipe], workdir: Path, published: Published | None = None) -> list[Family]:
    """Each base's page; with ``published``, every variant is the workdir's or the Hub's (``read.merge``)."""
    by_base: dict[str, list[Recipe]] = {}
    for r in catalog:
        by_base.setdefault(r.base_name, []).append(r)
    out = []
    for base in sorted(by_base):
        recipes = sorted(by_base[base], key=lambda x: (x.method, -x.weights.bits, x.name))
        variants = read_all(recipes, workdir, published)
        points = [p for v in variants for p in (v.measured_point(), v.study_point()) if p is not None]
        out.append(Family(base, slug(base), tuple(cells(v) for v in variants), tuple(points)))
    return out
