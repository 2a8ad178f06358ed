"""Everything a card says, gathered from the recipe, build.json, eval.json and sibling variants.

Nothing here is invented: a number is either read from a stage's JSON (measured by zoo) or from the
recipe's ``study`` section (published by the paper), and each is labelled as such. The variant's own
build and eval records come in already checked by the caller (``render``), so a card can never mix
one build's text with another build's numbers. This variant and its siblings are Variants
(``zoo.variant``): a sibling's eval.json that measured an earlier build of it counts as "not
evaluated", and metric keys are read through the Metric table. The siblings come from the workdir
and, when the caller read them (``published``), from their releases on the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.card.common import bits_label, fmt, ppl_name, primary_metric
from zoo.card.siblings import hidden_count, plot_points, table
from zoo.card.usage import KV_CONTEXT, axes, intended_use, method_class, served, serving_memory
from zoo.families import FAMILIES
from zoo.fidelity import fidelity
from zoo.methods import METHODS
from zoo.recipe import Recipe
from zoo.records import BenchRecord, BuildRecord, EvalRecord
from zoo.tasks import TASKS
from zoo.variant.metrics import ZERO_SHOT_AVG, metric
from zoo.variant.model import Variant
from zoo.variant.read import assemble, text_config
from zoo.workdir import Layout, sha256_file

if TYPE_CHECKING:
    from zoo.variant.hub import Published

# Who implements a method that zoo runs through a library (by the checkpoint format it writes).
IMPLEMENTED_BY = {
    "compressed-tensors": "llm-compressor's implementation, run with this recipe's settings (not the authors' code)",
    "gptq": "gptqmodel's implementation, run with this recipe's settings (not the authors' code)",
    "awq": "gptqmodel's implementation, run with this recipe's settings (not the authors' code)",
    "adapter": "peft and bitsandbytes (the stack QLoRA's authors published), run with this recipe's settings",
}
STUDY = "Huang et al. 2024, An Empirical Study of LLaMA3 Quantization: From LLMs to MLLMs (arXiv 2404.14047)"
# The built-in tiny bases were trained on CPython's documentation: a general-knowledge prompt would
# only show them failing at something they were never taught.
PROMPT_TINY = "The for statement is used to"
PROMPT_HUB = "The capital of France is"
ZERO_BASE = "n/a: base is 0"

__all__ = ["STUDY", "fmt", "gather", "headline", "metric_label", "plot_points", "results_rows"]


def metric_label(key: str) -> str:
    """The Metric table's label (``zoo.variant.metrics``)."""
    return metric(key).label


def results_rows(ev: EvalRecord | None, offline: bool = False) -> list[dict[str, Any]]:
    """The evaluation table; a recovery that cannot exist (base measured 0) says why instead of "missing".

    ``offline``: the tasks ran on zoo's small offline files, where a recovery of 100% means a handful of
    items came out the same, so each task row's recovery carries how many items it rests on."""
    if not ev:
        return []
    base, rec = ev.baseline.metrics, ev.recovery
    few = (_items_per_task(ev) or "a few items per task").replace(" per task", "") if offline else None
    rows = []
    for k, v in ev.metrics.items():
        r = rec.get(k)
        text = ZERO_BASE if r is None and base.get(k) == 0 else fmt(r)
        if few and r is not None and not metric(k).is_perplexity:
            text = f"{text} (on {few})"
        rows.append(
            {
                "key": k,
                "label": metric_label(k),
                "base": base.get(k),
                "value": v,
                "recovery": r,
                "recovery_text": text,
            }
        )
    return rows


def _items_per_task(ev: EvalRecord) -> str | None:
    """The "N items per task" that the harness reported it scored (eval.json ``details.tasks``)."""
    tasks = ev.details.get("tasks") or {}
    counts = sorted({int(d["samples"]) for d in tasks.values() if isinstance(d, dict) and d.get("samples")})
    if not counts:
        return None
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{n} item{'' if n == '1' else 's'} per task"


def _windows(ev: EvalRecord) -> str | None:
    ppl = ev.details.get("perplexity") or {}
    counts = sorted({int(d["windows"]) for d in ppl.values() if isinstance(d, dict) and d.get("windows")})
    if not counts:
        return None
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{n} perplexity window{'' if n == '1' else 's'}"


def headline(recipe: Recipe, ev: EvalRecord | None, rows: list[dict[str, Any]]) -> str | None:
    """The card's first sentence (markdown), or None when there is nothing measured to say.

    A recovery is claimed only from a full run on real data: a ``--limit`` run or zoo's 10-item
    offline task files can read 100% by chance, so those are reported as measured values with what
    they were measured on, and perplexity (a full held-out text unless limited) is preferred."""
    if not ev:
        return None
    title = f"{METHODS.get(recipe.method).title} {bits_label(recipe)} quantization of {recipe.base_name}"
    usable = {r["key"]: r for r in rows if r["recovery"] is not None}
    primary = primary_metric(recipe)
    limit = ev.limit
    offline = recipe.eval.task_data is not None and any(not metric(r["key"]).is_perplexity for r in rows)
    order = [primary, ZERO_SHOT_AVG] if limit or offline else [ZERO_SHOT_AVG, primary]
    row = next((usable[k] for k in order if k and k in usable), None)
    items = _items_per_task(ev)
    offline_note = (
        f"Task accuracies come from zoo's small offline task files ({items or 'a few items per task'}), not the real "
        "benchmarks, and are not comparable with published scores; their recovery figures below only compare this "
        "variant with its base on those few items."
        if offline
        else ""
    )
    if row is None:
        return f"**{title}.** No metric has both a base and a variant value to compare. {offline_note}".rstrip()
    measured = f"{row['label']} {fmt(row['value'])} against {fmt(row['base'])} for the 16-bit base"
    if limit:
        sample = ", ".join(x for x in (items, _windows(ev)) if x) or f"at most {limit} items per task"
        text = (
            f"**{title}.** Quick run only (`zoo eval --limit {limit}`: {sample}), not a full evaluation: "
            f"{measured} ({fmt(row['recovery'])}% on this sample)."
        )
    elif offline and not metric(row["key"]).is_perplexity:
        text = f"**{title}.** On zoo's small offline task files: {measured}."
    else:
        text = f"**{title}, recovering {fmt(row['recovery'])}% of the 16-bit model's {row['label']}.**"
    return f"{text} {offline_note}".rstrip()


def warnings(recipe: Recipe, packed_release: bool = False) -> list[str]:
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
    if recipe.format == "fake" and packed_release:
        out.append(
            "This is a research checkpoint in zoo's packed format: the method's codes are decoded layer by layer as "
            "it runs, so it takes less memory but runs more slowly than the 16-bit base; it reproduces the method's "
            "accuracy."
        )
    elif recipe.format == "fake":
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


def _count(n: float) -> str:
    """A parameter count as people say it: 4.2M, 8.0B."""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def eval_command(name: str, ev: EvalRecord | None) -> str:
    """The ``zoo eval`` line that reproduces eval.json's settings (a quick run stays a quick run)."""
    cmd = f"zoo eval {name}"
    if ev and ev.limit:
        cmd += f" --limit {ev.limit}"
    if ev and ev.batch_size != 1:
        cmd += f" --batch-size {ev.batch_size}"
    return cmd


def lm_eval_commands(recipe: Recipe, ev: EvalRecord | None) -> list[str]:
    """Plain ``lm_eval`` lines that reproduce the card's task numbers without zoo, one per n-shot (the
    harness takes one ``--num_fewshot`` a run); none when the tasks ran on zoo's offline files."""
    tasks = [t for t in recipe.eval.tasks if TASKS[t].harness == "lm-eval"]
    if not tasks or recipe.eval.task_data is not None:
        return []
    if recipe.format == "adapter":
        args = f"pretrained={recipe.base.repo_id},revision={recipe.base.revision},peft={recipe.repo_id},load_in_4bit=True"
    else:
        args = f"pretrained={recipe.repo_id},dtype=bfloat16"
    by_shots: dict[int, list[str]] = {}
    for t in tasks:
        by_shots.setdefault(TASKS[t].num_fewshot, []).append(t)
    limit = f" --limit {ev.limit}" if ev and ev.limit else ""
    batch = ev.batch_size if ev else 1
    return [
        f"lm_eval --model hf --model_args {args} --tasks {','.join(names)} --num_fewshot {n} --batch_size {batch}{limit}"
        for n, names in sorted(by_shots.items())
    ]


def gather(
    recipe: Recipe,
    catalog: list[Recipe],
    workdir: Path,
    zoo_version: str,
    build: BuildRecord | None,
    ev: EvalRecord | None,
    published: Published | None = None,
) -> dict[str, Any]:
    """The template's context; ``build`` and ``ev`` are this variant's records, already checked. ``published``
    (``zoo.variant.hub.read_published``): the siblings' releases on the Hub, merged with the workdir's."""
    spec = METHODS.get(recipe.method)
    family = FAMILIES.get(recipe.family)
    rows = results_rows(ev, offline=recipe.eval.task_data is not None)
    primary = primary_metric(recipe)
    this = this_variant(recipe, workdir, build, ev)
    siblings = table(this, catalog, workdir, published)
    # the variant that built it; a method with no fidelity note is the library's own implementation, named
    note = fidelity(spec.name, getattr(recipe.params, "variant", None)) or IMPLEMENTED_BY.get(recipe.format or "", "")
    memory = serving_memory(this)
    bench = this.bench
    serving = served(this, recipe.repo_id, memory["context"] if memory else KV_CONTEXT)
    quality = next((r for r in rows if r["key"] == primary and r["value"] is not None and r["base"] is not None), None)
    from zoo.card.usage import exports

    return {
        "name": recipe.name,
        "recipe": recipe.model_dump(mode="json"),
        "exports": exports(Layout(workdir, recipe.name)),  # the exact GGUF / MLX files the release carries
        "method": {"name": spec.name, "title": spec.title, "paper": spec.paper, "fidelity": note, "calibrated": spec.calibrated},
        "family": {"name": family.name, "title": family.title, "multimodal": family.multimodal},
        "bits_label": bits_label(recipe),
        "test_model": {"parameters": _count(recipe.base.parameters * 1e9)} if recipe.base.builtin else None,
        "install_extras": "eval,vision" if any(TASKS[t].harness == "lmms-eval" for t in recipe.eval.tasks) else "eval",
        "base": {"name": recipe.base_name, "hub": recipe.base.repo_id, "revision": recipe.base.revision},
        "build": build.model_dump(mode="json") if build else None,  # templates read the records as JSON
        "eval": ev.model_dump(mode="json") if ev else None,
        "offline_tasks": recipe.eval.task_data is not None,
        # the release is zoo's packed checkpoint (#32): transformers loads it after `import zoo.packed`, vLLM not
        "packed_release": this.packed,
        "results": rows,
        "headline": headline(recipe, ev, rows),
        "study": recipe.study.figures(),
        "study_citation": recipe.study.source or STUDY,
        "study_source": recipe.study.source,  # set: the number is the method's own paper's, not the study's
        "siblings": siblings,
        "siblings_hidden": hidden_count(recipe, catalog, siblings),
        "ppl_name": ppl_name(recipe),
        "plot": None,  # set by render once the plot is drawn (fewer than two points: none)
        "warnings": warnings(recipe, this.packed),
        "zoo_version": zoo_version,
        "repo_id": recipe.repo_id,
        "prompt": PROMPT_TINY if recipe.base.builtin else PROMPT_HUB,
        "eval_command": eval_command(recipe.name, ev),
        "lm_eval_commands": lm_eval_commands(recipe, ev),
        "serving": memory,
        "served": serving,  # which runtimes zoo bench proved for this build; None: not checked
        "axes": axes(bench, quality),
        "intended_use": intended_use(kind := method_class(recipe), serving, this.packed),
        "method_class": kind,
    }


def this_variant(recipe: Recipe, workdir: Path, build: BuildRecord | None, ev: EvalRecord | None) -> Variant:
    """The card's own Variant: its checked records, bench.json of this build, no push (a card never links
    to itself, and pushing must not make the card stale)."""
    layout = Layout(workdir, recipe.name)
    if build is None:
        return assemble(recipe)
    # a bench.json of an earlier build is dropped by assemble: the card then says the check has not run
    sha = sha256_file(layout.build_json)
    return assemble(recipe, build, ev, BenchRecord.read(layout), None, sha, text_config(layout.model))
