"""Measured tables in docs/ come from the benches' JSON output, never from a hand edit.

Run: python bench/report.py bench/results/NAME.json [...]. Each bench script's ``--write-docs`` saves
its run as ``bench/results/<bench>.json`` and calls this, so a fresh measurement rewrites its tables;
running this alone re-renders the docs from the saved JSON (after a wording change here, say).

A result file is ``{"bench": NAME, "doc": "docs/X.md", "blocks": {BLOCK: {"header": [...], "rows": [[...]],
"notes": [...], "command": "python bench/...", "environment": "..."}}}``; a run adds or replaces its own
blocks and keeps the others (``bench/memory.py`` measures RTN and GPTQ in separate runs). Each block
replaces what stands between the lines ``<!-- bench:BLOCK -->`` and ``<!-- /bench:BLOCK -->`` in the
doc: the table, its notes, and one line naming the command, the machine, the versions and the date it
was measured on, so a reader can tell when a figure is stale. The rest of the file is left byte for
byte; a marker that is missing, doubled or out of order is one error naming the file and the marker,
and nothing is written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


class ReportError(Exception):
    """A doc or result file this writer cannot use; ``str(err)`` is one line with the fix."""


def cpu_model() -> str:
    """The CPU's marketing name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(today: datetime.date | None = None) -> str:
    """One line: where and with what a bench ran (read in the measuring process, saved in its JSON)."""
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    versions = ", ".join(f"{d} {_version(d)}" for d in ("torch", "transformers", "zoo"))
    day = (today or datetime.date.today()).isoformat()
    return f"{cpu_model()}, {os.cpu_count()} cores{gpu}; Python {platform.python_version()}, {versions}; {day}"


def _cells(values: Sequence[object]) -> str:
    return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in values) + " |"


def table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    lines = [_cells(header), "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ReportError(f"a row has {len(row)} cells for {len(header)} columns: {row!r}; fix: the bench's rows")
        lines.append(_cells(row))
    return "\n".join(lines)


def render(block: dict[str, Any]) -> str:
    """The Markdown between one pair of markers: table, notes, and the line saying where it was measured."""
    for key in ("header", "rows", "command", "environment"):
        if key not in block:
            raise ReportError(f"a block has no {key!r}; fix: rerun its bench with --write-docs")
    parts = [table(block["header"], block["rows"]), *(str(n) for n in block.get("notes", []))]
    parts.append(f"*Measured by `{block['command']}` on {block['environment']}.*")
    return "\n\n".join(parts)


def replace_block(text: str, name: str, body: str, doc: str = "the doc") -> str:
    """``text`` with the lines between ``name``'s markers replaced by ``body``; everything else kept."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    for marker in (start, end):
        if text.count(marker) != 1:
            found = "missing" if marker not in text else "there more than once"
            raise ReportError(f"{doc}: marker {marker} is {found}; fix: put one {start} line and one {end} line "
                              "where the table goes")  # fmt: skip
    i, j = text.index(start) + len(start), text.index(end)
    if j < i:
        raise ReportError(f"{doc}: {end} comes before {start}; fix: put the opening marker first")
    return text[:i] + "\n" + body.strip("\n") + "\n" + text[j:]


def write_docs(result: dict[str, Any], root: Path | None = None) -> Path:
    """Rewrite every block of ``result`` in its doc; all blocks or none (one write, after every check)."""
    root = root or ROOT
    for key in ("bench", "doc", "blocks"):
        if key not in result:
            raise ReportError(f"result has no {key!r}; fix: rerun the bench with --write-docs")
    path = root / result["doc"]
    if not path.is_file():
        raise ReportError(f"{result['doc']}: no such doc; fix: create it with the bench's markers")
    text = path.read_text()
    for name, block in result["blocks"].items():
        text = replace_block(text, name, render(block), result["doc"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def invocation() -> str:
    """How this bench was run, as a reader would retype it."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else script.name
    return shlex.join(["python", name, *sys.argv[1:]])


def publish(bench: str, doc: str, blocks: dict[str, dict[str, Any]], root: Path | None = None) -> Path:
    """What a bench's --write-docs calls: merge this run's blocks into bench/results/<bench>.json (each
    stamped with the command and environment), then render that file into its doc."""
    root = root or ROOT
    out = root / "bench" / "results" / f"{bench}.json"
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"bench": bench, "doc": doc, "blocks": {}}
    result["doc"] = doc
    stamp = {"command": invocation(), "environment": environment()}
    result["blocks"].update({name: {**block, **stamp} for name, block in blocks.items()})
    path = write_docs(result, root)  # first: a doc without its markers leaves the saved results as they were
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="*", type=Path, help="result files (default: every bench/results/*.json)")
    args = p.parse_args(argv)
    files = args.results or sorted(RESULTS.glob("*.json"))
    if not files:
        print(f"error: no results in {RESULTS}; fix: run a bench with --write-docs first", file=sys.stderr)
        return 2
    try:
        for f in files:
            print(f"{f}: wrote {write_docs(json.loads(f.read_text()))}")
    except (ReportError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
