"""Bad input a new user gives: one ``error:`` line naming the problem and the fix, the documented exit
code, no traceback, nothing written. One table; each row runs the real console entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, write
from zoo.cli import main

GOOD = "name: {name}\nextends: _base/tiny-llama3\nmethod: rtn\nweights: {{bits: 4}}\n"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["zoo", *argv]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    return int(exit_info.value.code or 0), capsys.readouterr().err


def _catalog(tmp_path: Path) -> Path:
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES / "_base", root / "_base")
    write(root, "tiny-ok", GOOD.format(name="tiny-ok"))
    return root


def _case(tmp_path: Path, case: str) -> tuple[list[str], int, str]:
    """argv, exit code, and a fragment of the one error line, for each bad input."""
    root = _catalog(tmp_path)
    work = tmp_path / "work"
    cat = ["--recipes", str(root)]
    if case == "binary recipe file":
        (root / "tiny-bin.yaml").write_bytes(b"\xff\xfe\x00\x01binary")
        return [*cat, "validate"], 2, "tiny-bin.yaml: not UTF-8 text (byte 0) (fix: save the recipe as UTF-8 YAML)"
    if case == "binary recipe breaks list":
        (root / "tiny-bin.yaml").write_bytes(b"\xff\xfe\x00\x01binary")
        return [*cat, "list"], 2, "not UTF-8 text"
    if case == "bits as a word":
        write(root, "tiny-w", GOOD.format(name="tiny-w").replace("bits: 4", "bits: four"))
        return [*cat, "validate"], 2, "tiny-w.yaml: weights.bits: must be a number of bits, such as 4 or 1.1 (got 'four')"
    if case == "seqlen beyond the context":
        write(root, "tiny-s", GOOD.format(name="tiny-s") + "calibration: {seqlen: 100000}\n")
        return (
            [*cat, "validate"],
            2,
            "calibration.seqlen: 100000 is longer than the base's context (2048) (fix: use at most 2048)",
        )
    if case == "recipe named ..":
        write(root, "tiny-dots", GOOD.format(name=".."))
        return [*cat, "validate"], 2, "name: a recipe name is lower-case letters, digits"
    if case == "name with a trailing newline":  # `$` would match before it; names are matched whole
        (root / "tiny-nl\n.yaml").write_text(GOOD.format(name='"tiny-nl\\n"'))
        return [*cat, "validate"], 2, "name: a recipe name is lower-case letters"
    if case == "shell characters in a name":
        write(root, "x", GOOD.format(name="'x;$(id)'"))
        return [*cat, "validate"], 2, "name: a recipe name is lower-case letters"
    if case == "name given as a path":
        return [*cat, "build", "../recipes/tiny-ok", "--workdir", str(work)], 2, "is not a recipe name"
    if case == "recipes folder missing":
        return ["--recipes", str(tmp_path / "nonexistent"), "list"], 2, "recipe directory"
    if case == "workdir is a file":
        work.write_text("x")
        return [*cat, "build", "tiny-ok", "--workdir", str(work)], 2, "is a file, not a folder"
    if case == "eval --limit 0":
        return [*cat, "eval", "tiny-ok", "--limit", "0", "--workdir", str(work)], 2, "Invalid value for '--limit'"
    if case == "eval --batch-size 0":
        return [*cat, "eval", "tiny-ok", "--batch-size", "0", "--workdir", str(work)], 2, "Invalid value for '--batch-size'"
    if case == "build --host-memory 0":
        return [*cat, "build", "tiny-ok", "--host-memory", "0", "--workdir", str(work)], 2, "Invalid value for '--host-memory'"
    if case == "unknown command":
        return ["biuld"], 2, "No such command 'biuld'"
    if case == "unpinned base under --strict":
        write(
            root,
            "tiny-hub",
            GOOD.format(name="tiny-hub") + "base: {builtin: null, repo_id: nobody/some-model, revision: main}\n",
        )
        return [*cat, "validate", "--strict"], 2, "base.revision: 'main' is a branch, not a commit"
    if case == "Hub unreachable":  # online, but nothing listens: an httpx error, not a traceback
        write(
            root,
            "tiny-hub",
            GOOD.format(name="tiny-hub")
            + "base: {builtin: null, repo_id: nobody/some-model, revision: 0123456789abcdef0123456789abcdef01234567}\n",
        )
        return (
            [*cat, "build", "tiny-hub", "--device", "cpu", "--workdir", str(work)],
            5,
            "cannot reach the Hub for nobody/some-model@",
        )
    raise AssertionError(case)


CASES = [
    "binary recipe file",
    "binary recipe breaks list",
    "bits as a word",
    "seqlen beyond the context",
    "recipe named ..",
    "shell characters in a name",
    "name with a trailing newline",
    "name given as a path",
    "recipes folder missing",
    "workdir is a file",
    "eval --limit 0",
    "eval --batch-size 0",
    "build --host-memory 0",
    "unknown command",
    "unpinned base under --strict",
    "Hub unreachable",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    if case == "Hub unreachable":
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    argv, code, fragment = _case(tmp_path, case)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    got, err = run_main(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:") or ": " in line and ".yaml" in line]
    assert got == code, err
    assert "Traceback" not in err and errors, err
    assert fragment in err, err
    assert "bits.int" not in err and "bits.float" not in err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before and p.parts[0] == "work"] == [], "a failed command left files behind"


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare for a read-only mount")
def test_read_only_workdir_is_one_line(tmp_path: Path) -> None:
    """As root a chmod does not stop writes; a read-only filesystem does, for everyone."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    script = f'mount -t tmpfs -o ro,size=1m tmpfs "{mnt}" || exit 99; exec "$@"'
    cmd = [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "build", "tiny-llama3-rtn-4bit", "--workdir", str(mnt)]
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *cmd], capture_output=True, text=True, env=os.environ)
    if res.returncode == 99:
        pytest.skip("this machine cannot mount a tmpfs in a user namespace")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error: workdir {mnt} is not writable; fix: pass --workdir with a folder you can write to"
