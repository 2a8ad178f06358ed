"""The CLI as a user runs it: exit codes, tables, JSON, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import RECIPES, ROOT, write
from zoo.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), *args])
    return res.exit_code, res.stdout, res.stderr


def test_list_shows_whole_catalog_with_buildable_column() -> None:
    code, out, _ = run("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "family", "base", "method", "bits", "group", "act_bits", "format", "buildable"]
    assert len(lines) - 1 == len(list(RECIPES.glob("*.yaml")))
    assert any(line.startswith("llama3-70b-gptq-3bit ") for line in lines)


def test_list_filters_and_json() -> None:
    code, out, _ = run("list", "--family", "llama3-70b", "--method", "gptq", "--bits", "3", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["llama3-70b-gptq-3bit", "llama3-70b-gptq-3bit-pc"]
    assert {r["base"] for r in rows} == {"meta-llama/Meta-Llama-3-70B"}
    code, out, _ = run("list", "--family", "llava-next", "--json")
    assert {r["family"] for r in json.loads(out)} == {"llava-next"}


def test_list_unknown_method_suggests() -> None:
    code, _, err = run("list", "--method", "gpqt")
    assert code == 2
    assert err.strip() == "error: unknown method 'gpqt'; did you mean 'gptq'?"


def test_show_resolves_everything() -> None:
    code, out, _ = run("show", "llama3-8b-awq-4bit", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["base"]["repo_id"] == "meta-llama/Meta-Llama-3-8B"
    assert data["params"] == {"n_grid": 20, "duo_scaling": True}
    assert data["calibration"]["samples"] == 128


def test_show_unknown_recipe_suggests() -> None:
    code, _, err = run("show", "llama3-8b-gptq-4bti")
    assert code == 2
    assert "did you mean 'llama3-8b-gptq-4bit'?" in err
    assert len(err.strip().splitlines()) == 1


def test_validate_all_and_failures(catalog: Path) -> None:
    code, out, _ = run("validate")
    assert code == 0 and out.strip().endswith("file(s) valid")
    bad = write(catalog, "bad", "name: bad\nextends: _base/tiny-llama3\nmethod: rtn\nweights: {bits: 9}\n")
    worse = write(catalog, "worse", "name: worse\nextends: _base/tiny-llama3\nmethod: awk\nweights: {bits: 4}\n")
    res = CliRunner().invoke(cli, ["validate", str(bad), str(worse)])
    assert res.exit_code == 2
    assert "bad.yaml: weights.bits: RTN does not support 9-bit weights" in res.stderr
    assert "worse.yaml: method: unknown method 'awk' (fix: did you mean 'awq'?)" in res.stderr
    assert "2 problem(s) in 2 of 2 file(s)" in res.stderr


def test_python_dash_m_and_console_script() -> None:
    out = subprocess.run([sys.executable, "-m", "zoo", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("zoo, version")


def test_wheel_ships_card_templates_and_tiny_bases(tmp_path: Path) -> None:
    """`pip install .` (a wheel, not a checkout) must carry what `zoo card` and the tiny builds read."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy: setuptools writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("zoo", "cards", "recipes"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("zoo-*.whl"))).namelist())
    templates = {p.name for p in (ROOT / "cards").glob("*.md.j2")}
    assert templates and {f"zoo/card/templates/{t}" for t in templates} <= names
    assert "zoo/tiny/tiny-llama3/model.safetensors" in names
    assert "zoo/recipes/tiny-llama3-gptq-4bit.yaml" in names and "zoo/recipes/_base/tiny-llama3.yaml" in names


def test_installed_wheel_lists_validates_and_cards_outside_a_checkout(tmp_path: Path, built, workdir: Path) -> None:
    """A fresh venv holding the wheel (this venv's packages visible through a .pth, zoo itself only from
    the wheel), run from a folder that is not the checkout."""
    import shutil
    import sysconfig

    test_wheel_ships_card_templates_and_tiny_bases(tmp_path)
    wheel = next(tmp_path.glob("zoo-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    built("tiny-llama3-rtn-8bit-pc")
    shutil.copytree(workdir / "tiny-llama3-rtn-8bit-pc", elsewhere / "work" / "tiny-llama3-rtn-8bit-pc")
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_RECIPES", "ZOO_WORKDIR", "PYTHONPATH")}

    def zoo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "zoo"), *args], cwd=elsewhere, env=env, capture_output=True, text=True)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import zoo; print(zoo.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)  # fmt: skip
    assert str(site) in where.stdout, where.stdout + where.stderr
    listed = zoo("list")
    assert listed.returncode == 0 and "llama3-70b-gptq-3bit" in listed.stdout, listed.stderr
    assert zoo("validate").returncode == 0
    card = zoo("card", "tiny-llama3-rtn-8bit-pc")
    assert card.returncode == 0, card.stderr
    assert "tiny-llama3-rtn-8bit-pc" in (elsewhere / "work" / "tiny-llama3-rtn-8bit-pc" / "card" / "README.md").read_text()


def test_group_options_work_after_the_subcommand(catalog: Path) -> None:
    write(catalog, "tiny-x", "name: tiny-x\nextends: _base/tiny-llama3\nmethod: gptq\nweights: {bits: 4}\n")
    before = CliRunner().invoke(cli, ["--recipes", str(catalog), "list", "--json"])
    after = CliRunner().invoke(cli, ["list", "--json", "--recipes", str(catalog)])
    assert before.exit_code == after.exit_code == 0 and before.stdout == after.stdout
    assert [r["name"] for r in json.loads(after.stdout)] == ["tiny-x"]
    res = subprocess.run([sys.executable, "-m", "zoo", "show", "tiny-x", "-v", "--recipes", str(catalog)],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0 and "name: tiny-x" in res.stdout


def test_every_command_takes_json() -> None:
    import click

    for name, command in cli.commands.items():
        subs = command.commands.items() if isinstance(command, click.Group) else [("", command)]
        for sub, c in subs:
            assert "as_json" in {p.name for p in c.params}, f"zoo {name} {sub} has no --json".replace("  ", " ")


def test_validate_json_lists_every_problem_and_exits_2(catalog: Path) -> None:
    write(
        catalog,
        "tiny-bad",
        "name: tiny-bad\nextends: _base/tiny-llama3\nmethod: gptqq\nweights: {bits: 4}\ncard: {template: lama3}\n",
    )
    res = CliRunner().invoke(cli, ["validate", "--json", "--recipes", str(catalog)])
    data = json.loads(res.stdout)
    assert res.exit_code == 2 and data["valid"] is False
    assert {p["field"] for p in data["problems"]} == {"method", "card.template"}


def test_backend_loops_log_a_line_off_a_terminal(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Off a terminal tqdm draws nothing, but a backend loop that took a while (llm-compressor's per-layer
    calibration) still says so in one log line, so a long build is never silent for minutes."""
    import tqdm.std

    import zoo.progress as progress

    progress.quiet_bars()
    monkeypatch.setattr(progress, "SLOW_LOOP_S", 0.0)
    with caplog.at_level("INFO", logger="zoo.progress"):
        assert list(tqdm.std.tqdm(range(3), desc="(2/5): Calibrating")) == [0, 1, 2]
        bar = tqdm.std.tqdm(total=3, desc="drawn by hand")
        assert bar.disable
    assert "(2/5): Calibrating: 3 done in 0s" in caplog.text


def test_validate_takes_catalog_names_too(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), "validate", "tiny-llama3-rtn-4bit"])
    assert res.exit_code == 0 and res.output.strip() == "1 file(s) valid", res.output
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), "validate", "tiny-llama3-rtn-4bt"])
    assert res.exit_code == 2 and "did you mean 'tiny-llama3-rtn-4bit'" in res.stderr


def test_an_invalid_sibling_does_not_block_a_card(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "recipes"
    shutil.copytree(RECIPES, root)
    write(root, "tiny-llama3-broken", "name: tiny-llama3-broken\nextends: _base/tiny-llama3\nmethod: rtn\nweights: {bits: four}\n")
    work = tmp_path / "work"
    res = CliRunner().invoke(cli, ["--recipes", str(root), "card", "tiny-llama3-rtn-4bit", "--workdir", str(work)])
    # past the catalog (it used to stop here with the sibling's problem, exit 2) to this variant's own state
    assert res.exit_code == 8 and "tiny-llama3-rtn-4bit is not built" in res.stderr, res.output


def test_backend_bars_on_a_terminal_leave_no_blank_line() -> None:
    """A backend's finished bar used to stay behind, ending in a newline: a blank line between zoo's log
    lines on a terminal. Under zoo they clear themselves, as zoo's own bars do. (A fresh interpreter:
    another test switches bars off in this one.)"""
    code = (
        "import io, tqdm.std\n"
        "from zoo.progress import transient_bars\n"
        "transient_bars()\n"
        "out = io.StringIO()\n"
        "for _ in tqdm.std.tqdm(range(3), desc='Loading weights', file=out, leave=True, disable=False): pass\n"
        "print(repr(out.getvalue()))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    drawn = res.stdout.strip()
    assert res.returncode == 0 and "Loading weights" in drawn and not drawn.endswith("\\n'"), (drawn, res.stderr)
