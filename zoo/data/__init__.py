"""Datasets by name: calibration sets and perplexity texts, in the one table every stage reads.

``DATASETS`` maps a recipe's dataset name to where it comes from and how its text is joined:
calibration (``data/calibration.py``), perplexity (``evaluation/run.py`` through ``data/text.py``),
the card's display names, ``datasets:`` front matter, model-index and ``.eval_results`` all read
these fields, so a Hub id is spelled once. Hub datasets load through ``datasets`` on machines that
reach the Hub; ``pydoc`` is CPython's own documentation text, present on every machine, used by the
tiny bases; ``file`` reads a local .txt or .jsonl given by ``path``.

Adding a dataset: one ``DatasetSpec`` line below (its Hub id, config, revision, files, column and
joiner as the study's GPTQ data utilities read it); recipes can then name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str  # how cards name it
    description: str
    hub_id: str | None = None  # None: not on the Hub (built-in or a local file)
    config: str | None = None
    revision: str | None = None  # a branch or ref when the data is not on main
    data_files: dict[str, str] = field(default_factory=dict)  # split -> file in the repo, when read by file
    data_dir: str | None = None  # read the files under this folder instead of a builder config
    column: str = "text"
    joiner: str = "\n\n"  # how rows are joined into one text, as GPTQ's datautils joins them
    calibration_split: str = "train"
    eval_split: str = "test"  # the split perplexity is measured on

    @property
    def on_hub(self) -> bool:
        return self.hub_id is not None


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec(
            "wikitext2",
            "WikiText2",
            "WikiText-2 raw (the study's calibration set)",
            hub_id="Salesforce/wikitext",  # `wikitext` on the Hub redirects here
            config="wikitext-2-raw-v1",
        ),
        DatasetSpec(
            "c4",
            "C4",
            "C4 English, GPTQ's first training shard and validation subset (1,100 documents)",
            hub_id="allenai/c4",
            config="en",  # the card's config; the loader reads the two shards below directly
            data_files={"train": "en/c4-train.00000-of-01024.json.gz", "validation": "en/c4-validation.00000-of-00008.json.gz"},
            joiner=" ",
            eval_split="validation",
        ),
        DatasetSpec(
            "ptb",
            "PTB",
            "Penn Treebank text (Mikolov's LM split), from the Hub's Parquet export of ptb_text_only",
            # The repo's main branch holds only a loading script, which datasets >= 4 refuses; the Hub's
            # own Parquet conversion (refs/convert/parquet) has the same rows in the `sentence` column,
            # as <config>/<split>/0000.parquet, read as the Hub documents it: data_dir=<config>.
            hub_id="ptb-text-only/ptb_text_only",
            config="penn_treebank",
            revision="refs/convert/parquet",
            data_dir="penn_treebank",
            column="sentence",
            joiner=" ",
        ),
        DatasetSpec("pydoc", "pydoc topics (held-out)", "CPython's documentation topics (PSF license), ships with Python"),
        DatasetSpec("file", "local file", "a local .txt or .jsonl file given by `path`"),
    )
}
