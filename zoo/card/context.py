"""Everything a card says, gathered from the recipe, build.json, eval.json and sibling variants.

Nothing here is invented: a number is either read from a stage's JSON (measured by zoo) or from the
recipe's ``study`` section (published by the paper), and each is labelled as such; a variant not yet
built or evaluated gets ``None`` and the template says "missing".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.families import FAMILIES
from zoo.methods import METHODS
from zoo.recipe import Recipe
from zoo.workdir import read_json

STUDY = "Huang et al. 2024, An Empirical Study of LLaMA3 Quantization: From LLMs to MLLMs (arXiv 2404.14047)"
DATASET_NAMES = {"wikitext2": "WikiText2", "c4": "C4", "ptb": "PTB", "pydoc": "pydoc topics (held-out)"}


def metric_label(key: str) -> str:
    group, metric = key.split("/", 1)
    if group == "ppl":
        return f"{DATASET_NAMES.get(metric, metric)} perplexity"
    if group == "zero_shot_avg":
        return "zero-shot average (acc)"
    return f"{group} ({metric})"


def _bits_label(r: Recipe) -> str:
    w = f"W{r.weights.bits:g}"
    if r.activations:
        return f"{w}A{r.activations.bits}"
    return w + ("" if r.weights.group_size == "channel" else f" g{r.weights.group_size}")


def _primary(r: Recipe) -> str | None:
    return f"ppl/{r.eval.perplexity[0]}" if r.eval.perplexity else None


def _measured(workdir: Path, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    return read_json(workdir / name / "build.json"), read_json(workdir / name / "eval.json")


def sibling_rows(recipe: Recipe, catalog: list[Recipe], workdir: Path) -> list[dict[str, Any]]:
    """One row per variant of the same base: bits, size, primary perplexity, average accuracy."""
    rows = []
    primary = _primary(recipe)
    for r in sorted(catalog, key=lambda x: (x.method, -x.weights.bits, x.name)):
        if r.base_name != recipe.base_name:
            continue
        build, ev = _measured(workdir, r.name)
        metrics = (ev or {}).get("metrics", {})
        ppl = metrics.get(primary) if primary else None
        study_ppl = getattr(r.study, primary.split("/")[1], None) if primary and ppl is None else None
        rows.append(
            {
                "name": r.name,
                "method": METHODS.get(r.method).title,
                "bits": r.weights.bits,
                "bits_label": _bits_label(r),
                "size_mb": build["total_bytes"] / 1e6 if build else None,
                "ppl": ppl if ppl is not None else study_ppl,
                "ppl_source": "zoo" if ppl is not None else "study" if study_ppl is not None else None,
                "avg_acc": metrics.get("zero_shot_avg/acc"),
                "repo_id": r.repo_id,
                "this": r.name == recipe.name,
            }
        )
    return rows


def plot_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": r["name"], "method": r["method"], "bits": r["bits"], "value": r["ppl"], "measured": r["ppl_source"] == "zoo"}
        for r in rows
        if r["ppl"] is not None and r["ppl"] > 0 and "A" not in r["bits_label"]
    ]


def results_rows(ev: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not ev:
        return []
    base = ev.get("baseline", {}).get("metrics", {})
    rec = ev.get("recovery", {})
    return [
        {"key": k, "label": metric_label(k), "base": base.get(k), "value": v, "recovery": rec.get(k)}
        for k, v in ev.get("metrics", {}).items()
    ]


def warnings(recipe: Recipe) -> list[str]:
    out = list(recipe.card.warnings)
    spec = METHODS.get(recipe.method)
    if recipe.weights.bits < 3 and not FAMILIES.get(recipe.family).multimodal:
        out.append(
            "Below 3 bits the study found most methods lose much of LLaMA-3's quality (perplexity often explodes); "
            "check the numbers above before using this variant."
        )
    if spec.name in ("qlora", "irqlora"):
        out.append(
            "In the study, 4-bit LoRA fine-tuning on Alpaca did not beat plain NF4 on LLaMA3-8B: MMLU 56.7 (QLoRA) and "
            "57.2 (IR-QLoRA) against 62.5 for NF4 without fine-tuning and 64.8 for FP16; zero-shot average 64.5 and 64.9 "
            "against 67.3 and 68.6. Below 4 bits it did not recover quality either."
        )
    if recipe.format == "fake":
        out.append(
            "This is a research checkpoint: weights are stored dequantized in 16-bit, so it has no memory or speed "
            "benefit; it reproduces the method's accuracy."
        )
    if recipe.eval.task_data is not None:
        out.append(
            "Task accuracies were measured on zoo's small offline task files, not the real benchmarks; they only "
            "compare this variant with its base."
        )
    return out


def gather(recipe: Recipe, catalog: list[Recipe], workdir: Path, zoo_version: str) -> dict[str, Any]:
    build, ev = _measured(workdir, recipe.name)
    spec = METHODS.get(recipe.method)
    family = FAMILIES.get(recipe.family)
    rows = results_rows(ev)
    primary = _primary(recipe)
    headline = next((r for r in rows if r["key"] == "zero_shot_avg/acc" and r["recovery"] is not None), None)
    headline = headline or next((r for r in rows if r["key"] == primary and r["recovery"] is not None), None)
    siblings = sibling_rows(recipe, catalog, workdir)
    return {
        "name": recipe.name,
        "recipe": recipe.model_dump(mode="json"),
        "method": {"name": spec.name, "title": spec.title, "paper": spec.paper},
        "family": {"name": family.name, "title": family.title, "multimodal": family.multimodal},
        "bits_label": _bits_label(recipe),
        "base": {"name": recipe.base_name, "hub": recipe.base.repo_id, "revision": recipe.base.revision},
        "build": build,
        "eval": ev,
        "results": rows,
        "headline": headline,
        "study": {k: v for k, v in recipe.study.model_dump().items() if v is not None},
        "study_citation": STUDY,
        "siblings": siblings,
        "warnings": warnings(recipe),
        "zoo_version": zoo_version,
        "repo_id": recipe.repo_id,
    }
