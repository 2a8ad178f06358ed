"""docs/plan.md prints the 8B and 70B plans that release.yml's runners get: they are what `zoo plan` prints
now (bench/plan_docs.py writes them), and they name the runner labels `zoo matrix` hands release.yml."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import RECIPES, ROOT
from zoo.cli import cli


def _plan_docs():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("plan_docs", ROOT / "bench" / "plan_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(module)
    return module


def test_docs_print_what_zoo_plan_prints() -> None:
    assert _plan_docs().main(["--check"]) == 0  # fix: python bench/plan_docs.py


def test_a_changed_plan_fails_the_check(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    module = _plan_docs()
    doc = tmp_path / "plan.md"
    doc.write_text(module.DOC.read_text().replace("vLLM tensor parallel 4", "vLLM tensor parallel 2", 1))
    monkeypatch.setattr(module, "DOC", doc)
    assert module.main(["--check"]) == 1


def test_the_printed_runners_are_the_matrix_labels_release_yml_uses() -> None:
    text = (ROOT / "docs" / "plan.md").read_text()
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), "matrix", "--family", "llama3-70b"])
    rows = {r["recipe"]: r for r in json.loads(res.stdout)["include"]}
    for name in ("llama3-70b-gptq-4bit", "llama3-70b-awq-4bit", "llama3-70b-billm-1.1bit"):
        labels = ", ".join(rows[name]["runner"])
        assert f"`zoo plan {name}` on its release runner" in text and f"`runs-on: [{labels}]`" in text, name
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "runs-on: ${{ matrix.runner }}" in workflow  # the jobs take the labels the matrix carries
