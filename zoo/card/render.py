"""The card stage: README.md (Hub front matter + body), the quality-vs-bits plot and, for real
benchmarks, the Hub's per-repo eval results files, under ``<workdir>/<name>/card/``.

The body comes from ``cards/<template>.md.j2`` rendered by a Jinja environment with
``StrictUndefined`` (a missing value is an error, never blank text); the front matter comes from
huggingface_hub's ``ModelCardData``, and both go through ``ModelCard.from_template``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.card.context import DATASET_NAMES, gather, plot_points
from zoo.card.plot import plot
from zoo.errors import CardError
from zoo.families import FAMILIES
from zoo.recipe import Recipe
from zoo.workdir import read_json, staging, write_json

log = logging.getLogger(__name__)
PLOT = "quality_vs_bits.png"
# metric key -> (model-index task type, Hub dataset id, config, split)
HUB_DATASETS: dict[str, tuple[str, str, str | None, str]] = {
    "wikitext2": ("text-generation", "Salesforce/wikitext", "wikitext-2-raw-v1", "test"),
    "c4": ("text-generation", "allenai/c4", "en", "validation"),
    "ptb": ("text-generation", "ptb-text-only/ptb_text_only", "penn_treebank", "test"),
    "arc_easy": ("multiple-choice", "allenai/ai2_arc", "ARC-Easy", "test"),
    "arc_challenge": ("multiple-choice", "allenai/ai2_arc", "ARC-Challenge", "test"),
    "hellaswag": ("multiple-choice", "Rowan/hellaswag", None, "validation"),
    "winogrande": ("multiple-choice", "allenai/winogrande", "winogrande_xl", "validation"),
    "piqa": ("multiple-choice", "ybisk/piqa", None, "validation"),
    "mmlu": ("multiple-choice", "cais/mmlu", "all", "test"),
}



@dataclass(frozen=True)
class CardResult:
    name: str
    status: str
    readme: Path
    plot: Path | None


def cards_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "cards"


def environment(folder: Path | None = None) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder or cards_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _fmt(v: Any) -> str:
    """How every number appears in a card (tests compare the table with eval.json through this)."""
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2e}"
    return str(v)


def eval_results(ctx: dict[str, Any]) -> list[Any]:
    """model-index entries for metrics measured on real benchmarks (never for zoo's offline files)."""
    from huggingface_hub import EvalResult

    offline_tasks = ctx["recipe"]["eval"]["task_data"] is not None
    out = []
    for row in ctx["results"]:
        group, metric = row["key"].split("/", 1)
        name = metric if group == "ppl" else group
        if name not in HUB_DATASETS or (group != "ppl" and offline_tasks):
            continue
        task_type, dataset, config, split = HUB_DATASETS[name]
        out.append(
            EvalResult(
                task_type=task_type,
                dataset_type=dataset,
                dataset_name=DATASET_NAMES.get(name, name),
                dataset_config=config,
                dataset_split=split,
                metric_type="perplexity" if group == "ppl" else metric,
                metric_name=row["label"],
                metric_value=round(float(row["value"]), 4),
            )
        )
    return out


def eval_result_entries(ctx: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Hub's ``.eval_results`` entries, when this huggingface_hub has them (1.4+)."""
    try:
        from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml
    except ImportError:
        return None
    entries = []
    for r in eval_results(ctx):
        task = (
            r.dataset_config
            if r.dataset_type == "allenai/ai2_arc"
            else r.metric_type
            if r.dataset_type in ("Salesforce/wikitext", "allenai/c4", "ptb-text-only/ptb_text_only")
            else "default"
        )
        entries.append(EvalResultEntry(dataset_id=r.dataset_type, task_id=str(task), value=r.metric_value, notes=r.metric_name))
    return eval_result_entries_to_yaml(entries) if entries else None


def card_data(recipe: Recipe, ctx: dict[str, Any]) -> Any:
    from huggingface_hub import ModelCardData

    family = FAMILIES.get(recipe.family)
    tags = ["zoo", "quantized", recipe.method, f"{recipe.weights.bits:g}-bit", recipe.format or "", family.name]
    if recipe.activations:
        tags.append(f"w{recipe.weights.bits:g}a{recipe.activations.bits}")
    results = eval_results(ctx)
    calib = recipe.calibration.dataset
    adapter = recipe.format == "adapter"  # LoRA releases: an adapter on the base, trained on instruction data
    datasets = [HUB_DATASETS[calib][1]] if calib in HUB_DATASETS else None
    if adapter:
        from zoo.data.instructions import HUB as INSTRUCTIONS

        tuned = recipe.params.get("dataset", "alpaca")
        datasets = [INSTRUCTIONS[tuned]] if tuned in INSTRUCTIONS else None
    return ModelCardData(
        model_name=recipe.name,
        license=recipe.base.license,
        license_link=recipe.base.license_link,
        base_model=recipe.base.repo_id,  # built-in tiny bases are not on the Hub
        base_model_relation=("adapter" if adapter else "quantized") if recipe.base.repo_id else None,
        pipeline_tag=family.pipeline_tag,
        library_name="peft" if adapter else "transformers",
        language=["en"],
        tags=[t for t in tags if t],
        datasets=datasets,
        eval_results=results or None,
        quantized_by="zoo",
    )


def _inputs_sha(recipe: Recipe, workdir: Path, template: Path) -> str:
    h = hashlib.sha256(recipe.model_dump_json().encode())
    for p in (workdir / recipe.name / "build.json", workdir / recipe.name / "eval.json"):
        h.update(p.read_bytes() if p.exists() else b"-")
    for p in sorted(template.parent.glob("*.j2")):
        h.update(p.read_bytes())
    return h.hexdigest()


def render(
    recipe: Recipe, catalog: list[Recipe], workdir: Path, force: bool = False, templates: Path | None = None
) -> CardResult:
    from huggingface_hub import ModelCard

    from zoo import __version__

    folder = templates or cards_dir()
    template = folder / f"{recipe.card.template}.md.j2"
    if not template.exists():
        raise CardError(
            f"card template {template} not found; fix: set card.template to one of "
            f"{', '.join(sorted(p.name.removesuffix('.md.j2') for p in folder.glob('*.md.j2')))}"
        )
    out = workdir / recipe.name / "card"
    key = _inputs_sha(recipe, workdir, template)
    done = read_json(out / "card.json")
    if done and done.get("inputs_sha256") == key and not force:
        log.info("%s: card is current (%s), skipping", recipe.name, out / "README.md")
        return CardResult(recipe.name, "skipped", out / "README.md", out / PLOT if (out / PLOT).exists() else None)
    ctx = gather(recipe, catalog, workdir, __version__)
    ctx["plot"] = PLOT if plot_points(ctx["siblings"]) else None
    import jinja2

    try:
        body = environment(folder).get_template(template.name).render(**ctx, fmt=_fmt)
    except jinja2.TemplateError as e:
        raise CardError(f"card template {template.name}: {type(e).__name__}: {e}") from e
    data = card_data(recipe, ctx)
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n{{ body }}", body=body)
    with staging(out) as tmp:
        (tmp / "README.md").write_text(str(card))
        series = []
        if ctx["plot"]:
            primary = f"ppl/{recipe.eval.perplexity[0]}" if recipe.eval.perplexity else ""
            base = ((ctx["eval"] or {}).get("baseline") or {}).get("metrics", {}).get(primary)
            series = plot(plot_points(ctx["siblings"]), _ppl_name(recipe), recipe.name, tmp / PLOT, base)
        entries = eval_result_entries(ctx)
        if entries:
            import yaml

            (tmp / ".eval_results").mkdir()
            (tmp / ".eval_results" / "zoo.yaml").write_text(yaml.safe_dump(entries, sort_keys=False))
        write_json(tmp / "card.json", {"inputs_sha256": key, "plot_series": series, "zoo_version": __version__})
    log.info("%s: card written to %s", recipe.name, out / "README.md")
    return CardResult(recipe.name, "rendered", out / "README.md", out / PLOT if ctx["plot"] else None)


def _ppl_name(recipe: Recipe) -> str:
    return DATASET_NAMES.get(recipe.eval.perplexity[0], recipe.eval.perplexity[0]) if recipe.eval.perplexity else ""
