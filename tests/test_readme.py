"""The README is a how-to that works as written: its first lines are the install-and-run and CI's test
command, every `zoo` command it (or a doc) shows exists with those options, and every doc it links is there."""

from __future__ import annotations

import re
import shlex

import click

from tests.conftest import ROOT
from zoo.cli import cli

README = ROOT / "README.md"


def _bash_lines(text: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_first_lines_install_and_run_the_tiny_model_then_the_test_command() -> None:
    first, second = _bash_lines(README.read_text())[:2]
    steps = [s.strip() for s in first.split("&&")]
    assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[all,dev]"'], steps
    assert [s.split()[:2] for s in steps[3:]] == [["zoo", "build"], ["zoo", "eval"], ["zoo", "card"]], steps
    assert all(s.split()[2].startswith("tiny-") for s in steps[3:]), steps
    assert second == "python -m pytest -q --durations=15"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = _bash_lines(README.read_text())[1]
    ci = [line.split("  #")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci


def _check(line: str) -> None:
    words = shlex.split(line.replace("|", " "))
    command: click.Command = cli
    opts = {o for p in cli.params for o in (*p.opts, *p.secondary_opts)}
    words = words[1:]
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        assert sub is not None, f"{line!r}: no command {words[0]!r}"
        command, words = sub, words[1:]
    opts |= {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in opts, f"{line!r}: {command.name} has no option {word}"
        elif re.fullmatch(r"(tiny-)?(llama3|llava-next)-[\w.-]+bit(-pc)?", word):  # a recipe name
            assert (ROOT / "recipes" / f"{word}.yaml").is_file(), f"{line!r}: no recipe {word}"


def test_every_zoo_command_shown_exists_with_those_options() -> None:
    lines = []
    for doc in (README, *(ROOT / "docs").glob("*.md")):
        lines += [line for line in _bash_lines(doc.read_text()) if line.startswith("zoo ")]
        lines += re.findall(r"`(zoo [a-z][^`]*)`", doc.read_text())
    checked = 0
    for line in lines:
        if re.search(r"[A-Z]{3,}|\.\.\.|\[", line):  # a template such as `zoo card NAME` or `[--dry-run]`: its words only
            line = " ".join(w for w in line.split() if not re.search(r"[A-Z]{3,}|\.\.\.|[\[\]]", w))
        _check(line)
        checked += 1
    assert checked > 20


def test_every_doc_the_readme_links_exists() -> None:
    text = README.read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
    for doc in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([a-z-]+\.(?:md|png))", doc.read_text()):
            assert (doc.parent / link).is_file(), (doc.name, link)
