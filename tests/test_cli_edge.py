"""The CLI's edge, as a new user meets it (#34, #29): errors under --json, did-you-mean on every name,
YAML tab errors, values from environment variables named, and a workdir that would write into the
current folder or a checkout refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.conftest import RECIPES, ROOT, write
from zoo.cli import cli

TINY = "tiny-llama3-rtn-4bit"


def zoo(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, ["--recipes", str(RECIPES), *args])


def one_doc(res: Result) -> dict:
    """stdout is exactly one JSON document, an error's, and stderr still has the error: line."""
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict) and {"error", "fix", "exit"} <= set(doc), doc
    assert doc["exit"] == res.exit_code != 0
    assert res.stderr.startswith("error: ") and doc["error"] in res.stderr
    return doc


def commands() -> dict[str, click.Command]:
    out = {}
    for name, command in cli.commands.items():
        subs = command.commands.items() if isinstance(command, click.Group) else [("", command)]
        out.update({f"{name} {sub}".strip(): c for sub, c in subs})
    return out


# One failing invocation per command that has --json: each must still print one JSON document.
FAILING = {
    "list": (["list", "--family", "lama3-8b"], 2),
    "show": (["show", "llama3-8b-gptq-4bti"], 2),
    "validate": (["validate", "tiny-llama3-rtn-4bt"], 2),
    "build": (["build", TINY, "--workdir", ""], 2),
    "eval": (["eval", TINY, "--workdir", ""], 2),
    "card": (["card", TINY, "--workdir", ""], 2),
    "push": (["push", TINY, "--dry-run", "--workdir", ""], 2),
    "pull": (["pull", "../x"], 2),
    "release": (["release", TINY, "--workdir", ""], 2),
    "collection sync": (["collection", "sync", "--workdir", ""], 2),
    "matrix": (["matrix", "no-such-recipe"], 2),
    "rehearse": (["rehearse", TINY, "--workdir", ""], 2),
    "site": (["site", "--workdir", ""], 2),
}


def test_every_command_with_json_reports_errors_as_json() -> None:
    """Each command with --json is wrapped by ``errors`` (which prints the error's document; it also adds the
    group's late options, seen here), and the cases below cover the commands there were when it was written."""
    with_json = {n for n, c in commands().items() if any("--json" in p.opts for p in c.params)}
    assert set(FAILING) <= with_json
    for name in with_json:
        assert "late_recipes" in {p.name for p in commands()[name].params}, f"zoo {name} is not wrapped by errors"


@pytest.mark.parametrize("command", sorted(FAILING))
def test_an_error_under_json_is_one_json_document(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # without the refusal, --workdir "" built here (the checkout's root, run from it)
    args, code = FAILING[command]
    text = zoo(*args)
    res = zoo(*args, "--json")
    assert res.exit_code == text.exit_code == code, res.output
    doc = one_doc(res)
    assert text.stdout == "" and text.stderr == res.stderr  # the text form is unchanged: stderr only
    assert doc["fix"], doc  # every one of these says what to do
    assert list(tmp_path.iterdir()) == []


def test_json_error_splits_problem_and_fix() -> None:
    doc = one_doc(zoo("card", TINY, "--workdir", "", "--json"))
    assert doc["error"] == "--workdir '' is empty (an unset shell variable?) and would build into the current folder"
    assert doc["fix"] == "pass --workdir with a folder, or leave it out for $ZOO_WORKDIR or ./work"
    doc = one_doc(zoo("list", "--method", "gpqt", "--json"))
    assert (doc["error"], doc["fix"]) == ("unknown method 'gpqt'", "did you mean 'gptq'?")


def test_an_error_after_the_result_keeps_one_document(tmp_path: Path) -> None:
    """A command that fails after computing its result (a failed rehearsal, exit 1) prints the result inside
    the error's document; before, stdout held the result and the error was on stderr only."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = subprocess.run([sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "rehearse", "llama3-8b-gptq-4bit", "--json",
                          "--workdir", str(tmp_path / "work")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 1, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["exit"] == 1 and doc["error"] == "1 of 1 rehearsal(s) failed: llama3-8b-gptq-4bit"
    assert [r["name"] for r in doc["result"]] == ["llama3-8b-gptq-4bit"] and doc["result"][0]["ok"] is False
    assert "error: 1 of 1 rehearsal(s) failed" in res.stderr


def test_validate_json_with_problems_is_the_result_plus_the_error(catalog: Path) -> None:
    write(catalog, "tiny-bad", "name: tiny-bad\nextends: _base/tiny-llama3\nmethod: gptqq\nweights: {bits: 4}\n")
    res = CliRunner().invoke(cli, ["validate", "--json", "--recipes", str(catalog)])
    doc = one_doc(res)
    assert doc["valid"] is False and doc["exit"] == 2 and doc["files"] >= 1
    assert [p["field"] for p in doc["problems"]] == ["method"] and doc["error"] == "1 problem(s) in 1 of 8 file(s)"
    assert "tiny-bad.yaml: method: unknown method 'gptqq'" in res.stderr and "1 problem(s) in 1 of 8 file(s)" in res.stderr


@pytest.mark.parametrize("args", [["list", "--json", "--famly", "x"], ["--json", "list"], ["show", "--json"]])
def test_click_usage_errors_under_json_are_json_too(args: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    doc = json.loads(res.stdout)
    assert doc["exit"] == 2 and doc["error"] in res.stderr and res.stderr.count("\n") == 1


def test_matrix_honours_json() -> None:
    plain, as_json = zoo("matrix", "--family", "tiny-llama3"), zoo("matrix", "--family", "tiny-llama3", "--json")
    assert plain.exit_code == as_json.exit_code == 0
    assert plain.stdout == as_json.stdout and len(plain.stdout.splitlines()) == 1  # one line for $GITHUB_OUTPUT
    assert json.loads(as_json.stdout)["include"]
    one_doc(zoo("matrix", "--family", "tiny-lama3", "--json"))


def test_commands_print_through_one_helper_and_raise_instead_of_exiting() -> None:
    """No command module formats JSON or exits by itself: output.emit prints, errors raise a ZooError."""
    for path in (ROOT / "zoo" / "cli").glob("*.py"):
        text = path.read_text()
        if path.name not in ("output.py", "group.py", "__init__.py"):
            assert "sys.exit(" not in text and "json.dumps(" not in text, path.name


# Did-you-mean on every name.


@pytest.mark.parametrize(
    "args,hint",
    [
        (["list", "--family", "lama3-8b"], "unknown family 'lama3-8b'; did you mean 'llama3-8b'?"),
        (["list", "--family", "llama3-8 b"], "did you mean 'llama3-8b'?"),
        (["list", "--family", "llama3-8"], "did you mean 'llama3-8b'?"),
        (["list", "--family", "lava-next", "--method", "gptq"], "did you mean 'llava-next'?"),
        (["list", "--bits", "5"], "unknown bit width '5'; choose one of: 1.1, 1.7, 2, 3, 4, 6, 8"),
        (["rehearse", "--all", "--family", "tiny-lama3"], "did you mean 'tiny-llama3'?"),
        (["build", TINY, "--device", "cpuu"], "did you mean 'cpu'?"),
        (["eval", TINY, "--backend", "vlm"], "did you mean 'vllm'?"),
        (["show", "nothing-like-it"], "fix: run `zoo list` for the names"),
    ],
)
def test_typos_suggest_the_nearest_and_exit_2(args: list[str], hint: str) -> None:
    res = subprocess.run([sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == "", res.stdout
    assert hint in res.stderr and res.stderr.count("\n") == 1, res.stderr


def test_a_real_family_still_lists_and_an_empty_combination_is_not_an_error() -> None:
    assert zoo("list", "--family", "llama3-8b").exit_code == 0
    res = zoo("list", "--family", "tiny-llava-next", "--method", "dbllm")  # both exist, nothing has both
    assert res.exit_code == 0 and res.stdout.strip() == "(no recipes match)"


@pytest.mark.parametrize(
    "args,fix",
    [
        (["--json", "list"], "put it after the command (zoo list --json)"),
        (["--workdir", "w", "card", TINY], "put it after the command (zoo card --workdir)"),
        (["--workdir", "w", "list"], "not of zoo nor of list; fix: put it after one of those commands (zoo "),
    ],
)
def test_a_command_option_before_the_command_says_where_it_goes(args: list[str], fix: str) -> None:
    res = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "--version" not in res.stderr
    assert "is an option of" in res.stderr and "not of zoo" in res.stderr and fix in res.stderr, res.stderr


def lone(tmp_path: Path, file: str) -> Path:
    """A catalog folder holding one recipe copied out of recipes/ (without its _base parents)."""
    root = tmp_path / "mine"
    root.mkdir()
    shutil.copy(RECIPES / "llama3-8b-gptq-4bit.yaml", root / file)
    return root


@pytest.mark.parametrize("file", ["llama3-8b-gptq-4bit.yaml", "my-gptq.yaml"])
def test_a_lone_copied_recipe_is_told_what_is_missing_not_its_own_name(tmp_path: Path, file: str) -> None:
    root = lone(tmp_path, file)
    stem = file.removesuffix(".yaml")
    res = CliRunner().invoke(cli, ["--recipes", str(root), "show", stem])
    assert res.exit_code == 2
    extends = next(line for line in res.stderr.splitlines() if "extends:" in line)
    assert f"choose one of: {stem}" not in extends and f"did you mean '{stem}'" not in extends
    assert "_base/ is not beside" in extends and "cp -r " in extends, extends


def test_a_lone_copied_recipe_missing_one_parent_is_told_where_it_ships(tmp_path: Path) -> None:
    root = lone(tmp_path, "llama3-8b-gptq-4bit.yaml")
    (root / "_base").mkdir()
    shutil.copy(RECIPES / "_base" / "llama3.yaml", root / "_base")
    res = CliRunner().invoke(cli, ["--recipes", str(root), "show", "llama3-8b-gptq-4bit"])
    assert res.exit_code == 2 and "_base/ lacks it (fix: copy the shipped one: cp " in res.stderr, res.stderr


def test_a_recipe_renamed_on_copy_is_found_by_its_declared_name(tmp_path: Path) -> None:
    root = lone(tmp_path, "my-gptq.yaml")
    res = CliRunner().invoke(cli, ["--recipes", str(root), "show", "llama3-8b-gptq-4bit"])
    assert res.exit_code == 2 and "choose one of: my-gptq" not in res.stderr
    assert "my-gptq.yaml says name: llama3-8b-gptq-4bit" in res.stderr and "fix: rename" in res.stderr


def test_did_you_mean_never_offers_the_name_itself() -> None:
    from zoo.errors import did_you_mean

    assert did_you_mean("a", ["a"]) == ""
    assert did_you_mean("a", ["a", "b"]) == "; choose one of: b"


# YAML tabs.


@pytest.mark.parametrize("loader", ["default", "pure"])
def test_a_tab_in_the_indentation_is_named(catalog: Path, loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    import zoo.recipe.load as load

    if loader == "pure":  # libyaml does not even say it was a tab
        monkeypatch.setattr(load, "_LOADER", yaml.SafeLoader)
    path = write(catalog, "tiny-tab", "name: tiny-tab\nextends: _base/tiny-llama3\nmethod: rtn\nweights:\n\tbits: 4\n")
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 2
    assert (
        "tiny-tab.yaml: invalid YAML at line 5, column 1: a tab; YAML indents with spaces (fix: replace tabs with spaces)"
        in res.stderr
    )


# Environment variables.


def test_a_bad_workdir_from_the_environment_is_named(tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    res = zoo("card", TINY, env={"ZOO_WORKDIR": str(file)})
    assert res.exit_code == 2 and f"error: ZOO_WORKDIR='{file}' (from the environment): workdir {file} is a file" in res.stderr


def test_a_missing_recipes_folder_from_the_environment_is_refused(tmp_path: Path) -> None:
    """It used to fall back to ./recipes silently: another catalog than the one asked for."""
    res = subprocess.run([sys.executable, "-m", "zoo", "list"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "ZOO_RECIPES": str(tmp_path / "nope")})  # fmt: skip
    assert res.returncode == 2 and res.stdout == ""
    assert f"ZOO_RECIPES='{tmp_path / 'nope'}' (from the environment) is not a folder" in res.stderr


def test_hub_org_and_signing_key_from_the_environment_are_named(tmp_path: Path) -> None:
    work = str(tmp_path / "work")
    res = zoo("push", TINY, "--dry-run", "--workdir", work, env={"ZOO_HUB_ORG": "bad org"})
    assert res.exit_code == 2 and "error: ZOO_HUB_ORG='bad org' (from the environment): invalid repo id" in res.stderr
    res = zoo("push", TINY, "--dry-run", "--workdir", work, "--org", "bad org")
    assert res.exit_code == 2 and "ZOO_HUB_ORG" not in res.stderr  # given on the command line: nothing to name
    key = str(tmp_path / "no-key.pem")
    res = zoo("push", TINY, "--dry-run", "--workdir", work, env={"ZOO_SIGNING_KEY_FILE": key})
    assert res.exit_code == 2 and f"ZOO_SIGNING_KEY_FILE='{key}' (from the environment): signing key" in res.stderr


# The workdir.


def run_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.mark.parametrize("value", ["", ".", "./", "CWD"])
def test_a_workdir_that_is_the_current_folder_is_refused(tmp_path: Path, value: str) -> None:
    """`--workdir "$UNSET"` used to build into the current folder (it was read as "."), among the user's files."""
    value = str(tmp_path) if value == "CWD" else value
    (tmp_path / "notes.txt").write_text("the user's own\n")
    for args in (["card", TINY, "--workdir", value], ["build", TINY, "--device", "cpu", "--workdir", value]):
        res = run_in(tmp_path, *args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "fix: pass --workdir with a folder" in res.stderr
        assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # nothing created


def test_the_current_folder_may_be_a_workdir_already(tmp_path: Path) -> None:
    """`cd work && zoo card NAME --workdir .` is deliberate: the folder holds zoo's records and nothing else."""
    (tmp_path / "tiny-llama3-rtn-3bit").mkdir()
    (tmp_path / "tiny-llama3-rtn-3bit" / "build.json").write_text("{}")
    res = run_in(tmp_path, "card", TINY, "--workdir", ".")
    assert res.returncode == 8 and f"{TINY} is not built in ." in res.stderr, res.stderr  # past the workdir check


@pytest.mark.parametrize("marker", [".git", "pyproject.toml"])
def test_a_workdir_at_a_checkout_root_is_refused(tmp_path: Path, marker: str) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / marker).mkdir() if marker == ".git" else (checkout / marker).write_text("")
    res = run_in(tmp_path, "card", TINY, "--workdir", str(checkout))
    assert res.returncode == 2 and f"is a checkout's root (it holds {marker})" in res.stderr
    res = run_in(tmp_path, "card", TINY, env={"ZOO_WORKDIR": str(checkout)})
    assert res.returncode == 2 and f"ZOO_WORKDIR='{checkout}' (from the environment) is a checkout's root" in res.stderr
    assert sorted(p.name for p in checkout.iterdir()) == [marker]


def test_an_empty_zoo_workdir_falls_back_to_work(tmp_path: Path) -> None:
    res = run_in(tmp_path, "card", TINY, env={"ZOO_WORKDIR": ""})
    assert res.returncode == 8 and f"{TINY} is not built in work" in res.stderr  # ./work, as documented
    assert "unset or empty" in " ".join(zoo("card", "--help").stdout.split())


def test_a_workdir_of_its_own_still_works(tmp_path: Path) -> None:
    res = run_in(tmp_path, "card", TINY, "--workdir", "builds")
    assert res.returncode == 8 and "is not built in builds" in res.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_empty_recipes_folder_option_is_refused(tmp_path: Path, where: str) -> None:
    """`--recipes "$UNSET"` used to read the current folder as the catalog (an empty listing, exit 0)."""
    args = ["--recipes", "", "list"] if where == "before" else ["list", "--recipes", ""]
    res = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "" and "--recipes '' is empty" in res.stderr, res.stderr


@pytest.mark.parametrize("args", [[], ["collection"]])
def test_a_group_alone_prints_its_help_not_errors(args: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and res.stderr.startswith("Usage: zoo") and "error:" not in res.stderr, res.stderr


def test_another_tools_word_for_extends_is_pointed_to_it(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(RECIPES / "_base", tmp_path / "_base")
    (tmp_path / "mine.yaml").write_text("name: mine\ninherits: _base/tiny-llama3\nmethod: rtn\nweights: {bits: 4}\n")
    res = subprocess.run([sys.executable, "-m", "zoo", "--recipes", str(tmp_path), "validate"], capture_output=True, text=True)
    assert res.returncode == 2 and "inherits: unknown key (fix: did you mean 'extends'?)" in res.stderr, res.stderr


def test_a_bad_hub_timeout_names_its_variable(tmp_path: Path) -> None:
    res = run_in(tmp_path, "pull", "zoo-tiny/x", env={"ZOO_HUB_TIMEOUT": "soon"})
    assert res.returncode == 2 and "ZOO_HUB_TIMEOUT='soon' (from the environment) is not a number" in res.stderr, res.stderr


def test_error_lines_are_inert_on_a_terminal(tmp_path: Path) -> None:
    odd = tmp_path / "w\x1b[2Jork"
    odd.write_text("a file where the workdir should be")
    res = run_in(tmp_path, "card", TINY, "--workdir", str(odd))
    assert res.returncode == 2 and "\x1b" not in res.stderr and "\\x1b[2J" in res.stderr, res.stderr


def test_bitsandbytes_advice_is_filtered_before_a_heavy_command_runs() -> None:
    import logging

    from zoo.cli import require

    require("eval", "build")
    filters = logging.getLogger("bitsandbytes.backends.cpu.ops").filters
    assert any(type(f).__name__ == "_NotApplicable" for f in filters)


def test_gpu_as_a_device_points_to_cuda_not_cpu(tmp_path: Path) -> None:
    res = run_in(tmp_path, "build", TINY, "--device", "gpu")
    assert res.returncode == 2 and "did you mean 'cuda'?" in res.stderr, res.stderr


def test_a_release_of_a_misspelled_recipe_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    res = run_in(tmp_path, "release", "tiny-llama3-gptq-4bt", "--dry-run", "--workdir", "w")
    assert res.returncode == 2 and "did you mean 'tiny-llama3-gptq-4bit'?" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "w").exists()
