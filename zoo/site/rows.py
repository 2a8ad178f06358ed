"""One row per catalog variant, as the site shows it: what zoo measured beside what the study published.

Numbers come only from records that describe the checkpoint beside them (the card's rule: an eval.json
of an earlier build counts as not evaluated). Sort keys are kept apart from display text so a column of
"not evaluated" cells still sorts (missing values last).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.card.common import bits_label, fmt, primary_metric, quick
from zoo.card.siblings import _series, measured, repo_url
from zoo.card.usage import serving_memory
from zoo.methods import METHODS
from zoo.recipe import Recipe
from zoo.records import BenchRecord, PushRecord
from zoo.workdir import Layout, size_text

ACC = "zero_shot_avg/acc"


@dataclass(frozen=True)
class Family:
    """One base's page: its variants, in table order."""

    base: str
    slug: str  # the page's file name, without .html
    rows: tuple[dict[str, Any], ...]

    @property
    def built(self) -> int:
        return sum(r["built"] for r in self.rows)

    @property
    def evaluated(self) -> int:
        return sum(r["evaluated"] for r in self.rows)


def slug(base: str) -> str:
    return base.replace("/", "--").lower()


def _pct(v: float | None) -> str:
    return f"{v:.1f}%" if v is not None else ""


def _published(recipe: Recipe, value: float | None) -> str:
    """A published number; one from another paper than the study (``study.source``) is marked "(paper)"."""
    if value is None:
        return ""
    return fmt(value) if recipe.study.source is None else f"{fmt(value)} (paper)"


def row(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    layout = Layout(workdir, recipe.name)
    build, ev = measured(workdir, recipe.name)
    pushed = PushRecord.read(layout) if build is not None else None
    primary = primary_metric(recipe)
    metrics, recovery = (ev.metrics, ev.recovery) if ev else ({}, {})
    ppl = metrics.get(primary) if primary else None
    acc = metrics.get(ACC)
    study_ppl = getattr(recipe.study, primary.split("/", 1)[1], None) if primary else None
    memory = serving_memory(recipe, build, layout.model)
    params = recipe.base.parameters
    stored_bits = build.total_bytes * 8 / (params * 1e9) if build and params else None
    reported = build.method.get("bits_per_weight") if build else None  # the method's own count, metadata included
    with_meta = float(reported) if isinstance(reported, (int, float)) else None
    status = "evaluated" if ev else "built" if build else "not built"
    limited = bool(ev and ev.limit)
    url = repo_url(pushed)
    bench = BenchRecord.current(layout) if build is not None else None
    return {
        "name": recipe.name,
        "method": METHODS.get(recipe.method).title,
        "series": _series(recipe),
        "bits": recipe.weights.bits,
        "bits_label": bits_label(recipe),
        "meta_bits": with_meta,
        "meta_bits_text": f"{with_meta:.2f}" if with_meta is not None else "",
        "stored_bits": stored_bits,
        "stored_bits_text": f"{stored_bits:.2f}" if stored_bits is not None else "",
        "status": status,
        "built": build is not None,
        "evaluated": ev is not None,
        "size_bytes": build.total_bytes if build else None,
        "size_text": size_text(build.total_bytes) if build else "not built",
        "memory_bytes": memory["total_gb"] * 1e9 if memory else None,
        "memory_text": memory["total_text"] if memory else "",
        "ppl_name": primary.split("/", 1)[1] if primary else "",
        "ppl": ppl,
        "ppl_text": quick(fmt(ppl), limited) if ppl is not None else "not evaluated",
        "ppl_recovery": recovery.get(primary) if primary and ppl is not None else None,
        "ppl_recovery_text": _pct(recovery.get(primary)) if primary and ppl is not None else "",
        "acc": acc,
        "acc_text": quick(fmt(acc), limited) if acc is not None else "not evaluated",
        "acc_recovery": recovery.get(ACC) if acc is not None else None,
        "acc_recovery_text": _pct(recovery.get(ACC)) if acc is not None else "",
        "study_ppl": study_ppl,
        "study_ppl_text": _published(recipe, study_ppl),
        "study_acc": recipe.study.zero_shot_avg,
        "study_acc_text": _published(recipe, recipe.study.zero_shot_avg),
        "limited": limited,
        "repo_id": pushed.repo_id if pushed else recipe.repo_id,
        "url": url,
        **_bench_cells(bench),
    }


def _bench_cells(bench: BenchRecord | None) -> dict[str, Any]:
    """zoo bench's columns: runtimes that served this build, and the speed and memory ratios to the 16-bit base
    (vLLM's when it serves the build, else transformers'; the runtime and device are named in the cell)."""
    if bench is None:
        return {"runtimes_text": "not checked", "decode_ratio": None, "decode_ratio_text": "", "memory_ratio": None,
                "memory_ratio_text": ""}  # fmt: skip
    ok = [c for c in bench.runtimes if c.serves]
    names = ", ".join(f"{'vLLM' if c.runtime == 'vllm' else c.runtime} ({c.device})" for c in ok) or "none"
    timed = sorted((c for c in ok if "variant" in c.speed and "base" in c.speed), key=lambda c: c.runtime != "vllm")
    decode = memory = None
    where = ""
    if timed:
        c, v, b = timed[0], timed[0].speed["variant"], timed[0].speed["base"]
        where = f" ({'vLLM' if c.runtime == 'vllm' else c.runtime}, {c.device})"
        decode = v.decode_tokens_per_s_b1 / b.decode_tokens_per_s_b1 if b.decode_tokens_per_s_b1 else None
        if v.peak_memory_bytes and b.peak_memory_bytes:
            memory = v.peak_memory_bytes / b.peak_memory_bytes
    return {
        "runtimes_text": names,
        "decode_ratio": decode,
        "decode_ratio_text": f"{decode:.2f}x{where}" if decode is not None else "",
        "memory_ratio": memory,
        "memory_ratio_text": f"{memory:.2f}x{where}" if memory is not None else "",
    }


def families(catalog: list[Recipe], workdir: Path) -> list[Family]:
    by_base: dict[str, list[Recipe]] = {}
    for r in catalog:
        by_base.setdefault(r.base_name, []).append(r)
    out = []
    for base in sorted(by_base):
        recipes = sorted(by_base[base], key=lambda x: (x.method, -x.weights.bits, x.name))
        out.append(Family(base, slug(base), tuple(row(r, workdir) for r in recipes)))
    return out
