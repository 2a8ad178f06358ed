"""One table per kind of name: a Hub dataset id spelled in a second place is a bug waiting to happen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from zoo.data import DATASETS
from zoo.tasks import TASKS

TABLES = {ROOT / "zoo" / "data" / "__init__.py", ROOT / "zoo" / "tasks.py"}
IDS = sorted({d.hub_id for d in DATASETS.values() if d.hub_id} | {t.hub_id for t in TASKS.values() if t.hub_id})


def sources() -> list[Path]:
    return [p for p in (ROOT / "zoo").rglob("*.py") if p not in TABLES] + list((ROOT / "cards").glob("*.j2"))


@pytest.mark.parametrize("hub_id", IDS)
def test_each_dataset_id_is_spelled_once(hub_id: str) -> None:
    elsewhere = [str(p.relative_to(ROOT)) for p in sources() if hub_id in p.read_text()]
    assert elsewhere == [], f"{hub_id} is spelled outside the name tables: {elsewhere}"


def test_lm_eval_reads_the_ids_the_task_table_names() -> None:
    """The card's model-index names what lm-eval really loaded: its own task files must agree."""
    import lm_eval
    import yaml

    root = Path(lm_eval.__file__).parent / "tasks"
    for t in TASKS.values():
        if t.harness != "lm-eval":
            continue
        rel = t.task_file or "mmlu/default/_default_template_yaml"
        text = (root / rel).read_text()
        data = yaml.safe_load("\n".join(x for x in text.splitlines() if "!function" not in x)) or {}
        if "include" in data and "dataset_path" not in data:
            data = {**yaml.safe_load((root / rel).parent.joinpath(data["include"]).read_text()), **data}
        assert data.get("dataset_path") == t.hub_id, (t.name, data.get("dataset_path"))
        if t.name != "mmlu":  # MMLU's subject files each set their own config
            assert data.get("dataset_name") == t.config, (t.name, data.get("dataset_name"))
            assert t.split in (data.get("validation_split"), data.get("test_split")), t.name


def test_every_perplexity_text_on_the_hub_is_read_without_a_loading_script() -> None:
    """datasets >= 4 refuses loading scripts: a script-only repo needs its Parquet export revision."""
    for d in DATASETS.values():
        if d.hub_id == "ptb-text-only/ptb_text_only":
            assert d.revision == "refs/convert/parquet" and d.column == "sentence" and d.joiner == " "
