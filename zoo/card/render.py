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
from typing import TYPE_CHECKING, Any

from zoo.card.check import cards_dir, template_file
from zoo.card.common import dataset_title, fmt, ppl_name, primary_metric
from zoo.card.context import gather
from zoo.card.plot import plot
from zoo.card.siblings import family, plot_points
from zoo.data import DATASETS
from zoo.errors import CardError
from zoo.families import FAMILIES
from zoo.lock import stage_lock
from zoo.recipe import Recipe
from zoo.records import BuildRecord, CardRecord, EvalRecord
from zoo.tasks import TASKS
from zoo.untrusted import plain
from zoo.variant.metrics import Metric, metric
from zoo.workdir import Layout, clear_partials, sha256_file, staging

if TYPE_CHECKING:
    from zoo.variant.hub import Published

log = logging.getLogger(__name__)
PLOT = "quality_vs_bits.png"


def hub_dataset(m: Metric) -> tuple[str, str, str | None, str] | None:
    """(model-index task type, Hub id, config, split) of what metric ``m`` measured, from the dataset and
    task tables; None for data that is not on the Hub (pydoc, local files, offline tasks)."""
    from zoo.data import DATASETS
    from zoo.tasks import TASKS

    if m.is_perplexity:
        d = DATASETS.get(m.name)
        return ("text-generation", d.hub_id, d.config, d.eval_split) if d and d.hub_id else None
    t = TASKS.get(m.group)
    return (t.card_type, t.hub_id, t.config, t.split) if t and t.hub_id and t.harness == "lm-eval" else None


_fmt = fmt  # the name tests and older callers import


@dataclass(frozen=True)
class CardResult:
    name: str
    status: str
    readme: Path
    plot: Path | None


def environment(folder: Path | None = None) -> Any:
    """Card templates run sandboxed (``SandboxedEnvironment``): no attribute starting with '_', no unsafe
    method of a value, so a template can format the context and nothing else."""
    import jinja2.sandbox

    return jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(folder or cards_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def eval_results(ctx: dict[str, Any]) -> list[Any]:
    """model-index entries for metrics measured on real benchmarks (never for zoo's offline files).

    A ``--limit`` run publishes nothing here: the Hub shows these numbers on leaderboards next to
    full evaluations, with no room for the caveat the card's text carries."""
    from huggingface_hub import EvalResult

    if (ctx["eval"] or {}).get("limit"):
        return []
    from zoo import __version__
    from zoo.tasks import TASKS

    offline_tasks = ctx["recipe"]["eval"]["task_data"] is not None
    created = str((ctx["eval"] or {}).get("created") or "")[:10]
    source = f"zoo {__version__} eval" + (f", {created}" if created else "")  # who measured it, and when
    out = []
    for row in ctx["results"]:
        m = metric(row["key"])
        name = m.name if m.is_perplexity else m.group
        where = hub_dataset(m)
        if where is None or (not m.is_perplexity and offline_tasks):
            continue
        task_type, dataset, config, split = where
        out.append(
            EvalResult(
                task_type=task_type,
                dataset_type=dataset,
                dataset_name=dataset_title(name),
                dataset_config=config,
                dataset_split=split,
                metric_type="perplexity" if m.is_perplexity else m.name,
                metric_name=row["label"],
                metric_value=round(float(row["value"]), 4),
                # n-shot as the Hub reads it: MMLU's 5-shot must not look 0-shot next to other results
                dataset_args=None if m.is_perplexity else {"num_few_shot": TASKS[m.group].num_fewshot},
                source_name=source,
                source_url=f"https://huggingface.co/{ctx['repo_id']}/blob/main/eval.json",  # published beside it
            )
        )
    return out


def eval_result_files(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The Hub's ``.eval_results`` files, one per benchmark dataset (``ai2_arc.yaml``, ``mmlu.yaml``):
    one bad entry can make the Hub ignore a whole file, so benchmarks do not share one. Perplexity stays
    in model-index and the card (its datasets are not benchmarks). Empty when this huggingface_hub has
    no ``EvalResultEntry`` (before 1.4)."""
    try:
        from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml
    except ImportError:
        return {}
    ev = ctx["eval"] or {}
    date = str(ev.get("created") or "")[:10] or None
    versions = (ev.get("suite") or {}).get("versions") or {}
    harness = f"lm-eval {versions['lm-eval']}" if versions.get("lm-eval") else "lm-eval"
    files: dict[str, list[Any]] = {}
    for r in eval_results(ctx):
        if r.metric_type == "perplexity":
            continue
        arc = r.dataset_type == TASKS["arc_easy"].hub_id  # one Hub dataset, two configs: two lm-eval tasks
        shots = (r.dataset_args or {}).get("num_few_shot")
        files.setdefault(r.dataset_type.split("/")[-1] + ".yaml", []).append(
            EvalResultEntry(
                dataset_id=r.dataset_type,
                task_id=str(r.dataset_config if arc else "default"),
                value=r.metric_value,
                date=date,
                source_name=r.source_name,
                source_url=r.source_url,
                notes=f"{r.metric_name}; {shots}-shot; {harness}",
            )
        )
    return {name: eval_result_entries_to_yaml(entries) for name, entries in sorted(files.items())}


def check_metadata(readme: str, results_files: dict[str, list[dict[str, Any]]]) -> None:
    """Parse the card's front matter and each ``.eval_results`` file back with huggingface_hub's own
    parsers, offline, so metadata the Hub would reject fails ``zoo card`` here and not ``zoo push`` on a GPU
    runner hours later."""
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(readme, ignore_metadata_errors=False).data
        results = getattr(data, "eval_results", None) or []  # ModelCardData: model-index parsed into EvalResults
        if not all(r.metric_value is not None for r in results):
            raise ValueError("a model-index result has no value")
        if results_files:
            from huggingface_hub import parse_eval_result_entries

            for entries in results_files.values():
                parse_eval_result_entries(entries)
    except Exception as e:  # noqa: BLE001 - whatever the parser objects to is the one line
        what = f"{type(e).__name__}: {str(e)[:200]}"
        raise CardError(f"the card's Hub metadata does not parse back ({what}); fix: report it, with the recipe") from e


def card_data(recipe: Recipe, ctx: dict[str, Any]) -> Any:
    from huggingface_hub import ModelCardData

    family = FAMILIES.get(recipe.family)
    tags = ["zoo", "quantized", recipe.method, f"{recipe.weights.bits:g}-bit", recipe.format or "", family.name]
    if recipe.activations:
        tags.append(f"w{recipe.weights.bits:g}a{recipe.activations.bits}")
    results = eval_results(ctx)
    calib = recipe.calibration.dataset
    adapter = recipe.format == "adapter"  # LoRA releases: an adapter on the base, trained on instruction data
    calib_spec = DATASETS.get(calib)
    datasets = [calib_spec.hub_id] if calib_spec and calib_spec.hub_id else None
    if adapter:
        from zoo.data.instructions import HUB as INSTRUCTIONS

        tuned = getattr(recipe.params, "dataset", "alpaca")  # LoRA methods name their instruction data
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
        # a gated base's license prompt and form, so the derivative asks for the same acceptance
        **((ctx["build"] or {}).get("base_gating") or {}),
    )


def _inputs_sha(
    recipe: Recipe, catalog: list[Recipe], workdir: Path, template: Path, version: str, published: Published | None = None
) -> str:
    """Everything the card reads: a sibling evaluated (or rebuilt, or released again) since changes the card too."""
    h = hashlib.sha256(recipe.model_dump_json().encode())
    h.update(version.encode())
    if published is not None:
        h.update(published.fingerprint().encode())
    for r in family(recipe, catalog):
        layout = Layout(workdir, r.name)
        # a sibling's push.json decides its link; this variant's own does not enter its card (no link to
        # itself), so pushing it never makes its card stale
        files = (layout.build_json, layout.eval_json) + ((layout.push_json,) if r.name != recipe.name else (layout.bench_json,))
        for p in files:
            h.update(p.name.encode() + (p.read_bytes() if p.is_file() else b"-"))
    for p in sorted(Layout(workdir, recipe.name).folder.glob("export/*/export.json")):  # a new export changes the card
        h.update(p.parent.name.encode() + p.read_bytes())
    for p in sorted(template.parent.glob("*.j2")):
        h.update(p.read_bytes())
    return h.hexdigest()


def render(
    recipe: Recipe,
    catalog: list[Recipe],
    workdir: Path,
    force: bool = False,
    templates: Path | None = None,
    wait: bool = False,
    published: Published | None = None,
) -> CardResult:
    """Render ``<workdir>/NAME/card/`` from the current build and its evaluation, holding the recipe lock.

    Refuses (exit 8) when the checkpoint no longer matches build.json, or eval.json measured an
    earlier build: a card must never publish numbers of another checkpoint. Everything is written in
    a staging folder swapped in at the end, so an interrupt leaves the previous card whole. ``published``
    (``zoo.variant.hub.read_published``): the siblings' releases, so a one-recipe release's card lists them."""
    template = template_file(recipe.card.template, templates)
    layout = Layout(workdir, recipe.name)
    with stage_lock(layout, "card", wait):
        build = BuildRecord.checked(layout)
        from zoo.records import check_recipe

        check_recipe(recipe, build, layout.folder)
        ev = EvalRecord.checked(layout)
        clear_partials(layout.folder)  # leftovers of a killed stage; we hold the lock, so none is live
        return _render(recipe, catalog, layout, force, template, build, ev, published)


def _render(
    recipe: Recipe,
    catalog: list[Recipe],
    layout: Layout,
    force: bool,
    template: Path,
    build: BuildRecord,
    ev: EvalRecord | None,
    published: Published | None = None,
) -> CardResult:
    import jinja2
    from huggingface_hub import ModelCard

    from zoo import __version__

    out = layout.card
    key = _inputs_sha(recipe, catalog, layout.workdir, template, __version__, published)
    build_sha = sha256_file(layout.build_json)
    eval_sha = sha256_file(layout.eval_json) if ev is not None else None
    done = CardRecord.read(layout)
    if done and done.inputs_sha256 == key and not force:
        log.info("%s: card is current (%s), skipping", recipe.name, out / "README.md")
        return CardResult(recipe.name, "skipped", out / "README.md", out / PLOT if (out / PLOT).exists() else None)
    ctx = gather(recipe, catalog, layout.workdir, __version__, build, ev, published)
    with staging(out) as tmp:
        primary = primary_metric(recipe)
        base_ppl = ev.baseline.metrics.get(primary) if ev and primary else None
        drawn = plot(plot_points(ctx["siblings"]), ppl_name(recipe), recipe.name, recipe.base_name, tmp / PLOT, base_ppl)
        ctx["plot"] = PLOT if drawn else None
        try:
            body = environment(template.parent).get_template(template.name).render(**ctx, fmt=fmt)
        except jinja2.TemplateError as e:  # SecurityError (the sandbox said no) among them
            raise CardError(f"card template {template.name}: {type(e).__name__}: {plain(e)}; fix: correct the template") from None
        card = ModelCard.from_template(card_data(recipe, ctx), template_str="---\n{{ card_data }}\n---\n{{ body }}", body=body)
        results_files = eval_result_files(ctx)
        check_metadata(str(card), results_files)  # before anything is written: a card the Hub would reject stops here
        (tmp / "README.md").write_text(str(card))
        if results_files:
            import yaml

            (tmp / ".eval_results").mkdir()
            for file_name, entries in results_files.items():
                (tmp / ".eval_results" / file_name).write_text(yaml.safe_dump(entries, sort_keys=False))
        record = CardRecord(
            inputs_sha256=key,
            build_sha256=build_sha,
            eval_sha256=eval_sha,
            plot=drawn,
            plot_series=drawn["series"] if drawn else [],
            zoo_version=__version__,
        )
        record.write_to(tmp / layout.card_json.name)  # the staging folder becomes card/ when swapped in
    log.info("%s: card written to %s", recipe.name, out / "README.md")
    return CardResult(recipe.name, "rendered", out / "README.md", out / PLOT if drawn else None)
