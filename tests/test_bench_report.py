"""Measured tables in docs/ are written by bench/report.py from a bench's JSON, between their markers only."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

DOC = """# Performance

Prose a person wrote, kept byte for byte.

<!-- bench:build -->
| old | table |
|---|---|
| 1 | 2 |
<!-- /bench:build -->

More prose.   Odd  spacing stays.
<!-- bench:eval -->
<!-- /bench:eval -->
Last line without a newline"""

RESULT = {
    "bench": "build",
    "doc": "docs/performance.md",
    "blocks": {
        "build": {
            "header": ["", "wall s", "peak RSS MB"],
            "rows": [["`zoo build`", "23.8", "777"], ["ratio", "1.02", "1.06"]],
            "notes": ["Model: 8 layers."],
            "command": "python bench/build.py --write-docs",
            "environment": "Some CPU, 2 cores; Python 3.11.2, torch 2.9.0, transformers 5.0.0, zoo 0.1.0; 2025-01-02",
        }
    },
}


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(tmp_path: Path, text: str = DOC) -> Path:
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "performance.md"
    doc.write_text(text)
    return doc


def test_the_table_is_written_between_the_markers_and_nothing_else_changes(report: ModuleType, tmp_path: Path) -> None:
    doc = _tree(tmp_path)
    report.write_docs(RESULT, tmp_path)
    text = doc.read_text()
    before, block, after = re.split(r"<!-- bench:build -->\n|<!-- /bench:build -->", text)
    assert before == DOC.split("<!-- bench:build -->")[0]
    assert after == DOC.split("<!-- /bench:build -->")[1]
    assert block.startswith("|  | wall s | peak RSS MB |\n|---|---|---|\n| `zoo build` | 23.8 | 777 |\n| ratio | 1.02 | 1.06 |\n")
    assert "old | table" not in block and "Model: 8 layers." in block
    # the line a reader dates the figures by: command, machine, versions, date
    assert "*Measured by `python bench/build.py --write-docs` on Some CPU, 2 cores; Python 3.11.2, torch 2.9.0" in block
    assert "2025-01-02" in block
    report.write_docs(RESULT, tmp_path)
    assert doc.read_text() == text  # a second run changes nothing


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        (DOC.replace("<!-- /bench:build -->\n", ""), "marker <!-- /bench:build --> is missing"),
        (DOC.replace("<!-- bench:build -->\n", ""), "marker <!-- bench:build --> is missing"),
        (DOC + "\n<!-- bench:build -->\n", "marker <!-- bench:build --> is there more than once"),
    ],
)
def test_a_missing_marker_is_one_clear_error_and_nothing_is_written(
    report: ModuleType, tmp_path: Path, broken: str, says: str
) -> None:
    doc = _tree(tmp_path, broken)
    with pytest.raises(report.ReportError) as err:
        report.write_docs(RESULT, tmp_path)
    assert str(err.value).startswith(f"docs/performance.md: {says}; fix: ")
    assert "\n" not in str(err.value)
    assert doc.read_text() == broken
    assert [p.name for p in doc.parent.iterdir()] == ["performance.md"]  # no temporary file left behind


def test_the_command_line_reports_the_error_in_one_line(report: ModuleType, tmp_path: Path, monkeypatch, capsys) -> None:
    """python bench/report.py RESULT.json: exit 2 and one `error: ...; fix: ...` line on stderr."""
    _tree(tmp_path, DOC.replace("<!-- bench:build -->\n", ""))
    monkeypatch.setattr(report, "ROOT", tmp_path)
    result = tmp_path / "build.json"
    result.write_text(json.dumps(RESULT))
    assert report.main([str(result)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: docs/performance.md: marker <!-- bench:build --> is missing; fix: ") and "\n" not in err


def test_publish_merges_this_runs_blocks_into_the_saved_json(report: ModuleType, tmp_path: Path, monkeypatch) -> None:
    """A bench's --write-docs: the run's blocks are stamped with command and environment, saved, rendered;
    blocks from an earlier run (another --methods, say) stay in the JSON."""
    doc = _tree(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / "eval.py"), "--write-docs"])
    block = {"header": ["batch", "zoo"], "rows": [["1", "821"]]}
    report.publish("perf", "docs/performance.md", {"eval": block}, tmp_path)
    saved = json.loads((tmp_path / "bench" / "results" / "perf.json").read_text())
    assert saved["blocks"]["eval"]["command"] == "python bench/eval.py --write-docs"
    assert "cores; Python " in saved["blocks"]["eval"]["environment"]
    report.publish("perf", "docs/performance.md", {"build": RESULT["blocks"]["build"]}, tmp_path)
    saved = json.loads((tmp_path / "bench" / "results" / "perf.json").read_text())
    assert set(saved["blocks"]) == {"eval", "build"}
    assert "| 1 | 821 |" in doc.read_text() and "| ratio | 1.02 | 1.06 |" in doc.read_text()


def test_every_block_the_benches_write_has_its_markers_in_docs() -> None:
    """The docs hold a marker pair for each block name the bench scripts publish (so --write-docs cannot
    fail after a long run for want of one)."""
    names = {
        "docs/performance.md": ["build", "build-depth", "memory-rtn", "memory-gptq", "eval"],
        "docs/methods.md": ["methods-tiny-llama3", "methods-tiny-llama3-outliers-2bit", "ranking-tiny-llama3-outliers", "lora"],
        "docs/rehearsal.md": ["rehearse", "rehearse-all"],
    }
    for doc, blocks in names.items():
        text = (ROOT / doc).read_text()
        for name in blocks:
            assert text.count(f"<!-- bench:{name} -->") == 1 and text.count(f"<!-- /bench:{name} -->") == 1, (doc, name)
    published = "\n".join(p.read_text() for p in (ROOT / "bench").glob("*.py"))
    for doc in names:
        assert f'"{doc}"' in published, doc
