"""Local faults end in one clear line and lose nothing: a changed checkpoint, a full disk, two writers,
SIGTERM mid-stage. Each test checks the exit code, the one-line message, and that the earlier complete
results are byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import RECIPES
from zoo.cli import cli

NAME = "tiny-llama3-rtn-4bit"  # the quickest build (~15 s on one core)


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the lock (who holds it) and the hash cache (inodes change on copy)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (".zoo.lock", ".verified.json")
    }


def zoo(*args: str, workdir: Path) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), *args, "--workdir", str(workdir)])
    return res.exit_code, res.stderr


def one_line(err: str) -> str:
    """The one error line (progress logging may precede it), with no traceback anywhere."""
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir holding one finished build, copied by each test that damages it."""
    work = tmp_path_factory.mktemp("faults")
    code, err = zoo("build", NAME, "--device", "cpu", workdir=work)
    assert code == 0, err
    return work


@pytest.fixture
def work(once: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "work"
    shutil.copytree(once, dest)
    return dest


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_changed_checkpoint_stops_eval_with_one_line(work: Path, damage: str) -> None:
    weights = work / NAME / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    else:
        data[len(data) // 2] ^= 0x01
        time.sleep(0.01)  # a new mtime, as any real write gives
        weights.write_bytes(bytes(data))
    before = snapshot(work)
    code, err = zoo("eval", NAME, "--limit", "1", workdir=work)
    assert code == 8
    assert one_line(err) == (
        f"error: {NAME}'s build no longer matches build.json (model.safetensors); fix: zoo build {NAME} --force"
    )
    assert snapshot(work) == before and not (work / NAME / "eval.json").exists()


def test_missing_or_unreadable_build_json(work: Path) -> None:
    (work / NAME / "build.json").write_text("{not json")
    code, err = zoo("eval", NAME, workdir=work)
    assert code == 8 and "build.json" in one_line(err) and f"zoo build {NAME} --force" in err
    code, err = zoo("eval", "tiny-llama3-rtn-3bit", workdir=work)
    assert code == 8 and one_line(err).endswith(f"fix: zoo build tiny-llama3-rtn-3bit --workdir {work}")


def _start(args: list[str], workdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "ZOO_WORKDIR": str(workdir), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lock(folder: Path, stage: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads((folder / ".zoo.lock").read_text() or "{}").get("stage") == stage:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{stage} never took the lock: {proc.communicate()[1] if proc.poll() is not None else ''}")


def test_second_writer_is_refused_while_the_first_runs(work: Path) -> None:
    first = _start(["build", NAME, "--device", "cpu", "--force"], work)
    try:
        _wait_for_lock(work / NAME, "build", first)
        code, err = zoo("build", NAME, "--device", "cpu", "--force", workdir=work)
        assert code == 12, err
        line = one_line(err)
        assert line.startswith(f"error: {NAME} is locked by another zoo process (pid {first.pid} on ")
        assert "build since" in line and line.endswith("fix: wait for it to finish, or re-run with --wait")
        code, err = zoo("eval", NAME, workdir=work)  # every stage of the recipe waits for the writer
        assert code == 12
        code, err = zoo("push", NAME, "--dry-run", workdir=work)  # push too; it and release accept --wait
        assert code == 12 and "re-run with --wait" in err
        for command in ("push", "release"):
            assert "--wait" in CliRunner().invoke(cli, [command, "--help"]).output
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    code, err = zoo("build", NAME, "--device", "cpu", workdir=work)  # the lock was released
    assert code == 0, err


def test_stale_lock_from_a_dead_process_is_taken_over(work: Path, caplog: pytest.LogCaptureFixture) -> None:
    (work / NAME / ".zoo.lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere", "stage": "build"}))
    with caplog.at_level("WARNING", logger="zoo"):
        code, err = zoo("build", NAME, "--device", "cpu", "--force", workdir=work)
    assert code == 0, err
    assert "taking over a stale lock left by pid 999999 on elsewhere" in caplog.text


@pytest.mark.parametrize("stage", ["build", "eval"])
def test_sigterm_mid_stage_keeps_the_previous_results(work: Path, stage: str) -> None:
    before = snapshot(work)
    args = ["build", NAME, "--device", "cpu", "--force"] if stage == "build" else ["eval", NAME, "--limit", "1"]
    proc = _start(args, work)
    _wait_for_lock(work / NAME, stage, proc)
    if stage == "build":  # until the new checkpoint is being written
        deadline = time.time() + 120
        while not list((work / NAME).glob(".model.partial-*")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
    else:
        time.sleep(1.0)
    assert proc.poll() is None, "the stage ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("error: terminated; nothing half-written was kept")
    assert snapshot(work) == before
    assert not list((work / NAME).glob(".*.partial-*")) and not list((work / NAME).glob(".*.old-*"))


def _tmpfs_available() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


DISK_SCRIPT = r"""
set -u
mount -t tmpfs -o size={size} tmpfs "$W" || exit 99
{python} -m zoo --recipes {recipes} build {name} --device cpu --workdir "$W" >/dev/null 2>"$OUT/first.err"
echo $? > "$OUT/first.rc"
head -c $(( $(df --output=avail -B1 "$W" | tail -1) - 2000000 )) /dev/zero > "$W/filler"  # leave 2 MB
(cd "$W" && find . -type f ! -name .zoo.lock -print0 | sort -z | xargs -0 sha256sum) > "$OUT/before.sum"
{python} -c "import sys, zoo.quantize.run as r; r.check_disk = lambda *a, **k: None; sys.argv[0] = 'zoo'; \
from zoo.cli import main; main()" --recipes {recipes} build {name} --device cpu --force --workdir "$W" 2>"$OUT/second.err"
echo $? > "$OUT/second.rc"
(cd "$W" && find . -type f ! -name .zoo.lock -print0 | sort -z | xargs -0 sha256sum) > "$OUT/after.sum"
ls -a "$W/{name}" > "$OUT/ls"
{python} -m zoo --recipes {recipes} build {name} --device cpu --workdir "$W/small" 2>"$OUT/early.err" >/dev/null
echo $? > "$OUT/early.rc"
rm -rf "$W/small"
cat /dev/zero > "$W/filler2" 2>/dev/null  # not a byte left: even the lock file cannot be written
(cd "$W" && find . -type f ! -name .zoo.lock ! -name 'filler*' -print0 | sort -z | xargs -0 sha256sum) > "$OUT/full.before"
for stage in eval card; do
  {python} -m zoo --recipes {recipes} $stage {name} --workdir "$W" >/dev/null 2>"$OUT/$stage.err"
  echo $? > "$OUT/$stage.rc"
done
(cd "$W" && find . -type f ! -name .zoo.lock ! -name 'filler*' -print0 | sort -z | xargs -0 sha256sum) > "$OUT/full.after"
"""


@pytest.mark.skipif(not _tmpfs_available(), reason="needs `unshare -rm` and a tmpfs mount (user namespaces)")
def test_full_disk_is_one_line_and_keeps_the_previous_build(tmp_path: Path) -> None:
    """A 12 MB tmpfs holds one 3.9 MB build and a filler leaving 2 MB; a forced rebuild (the up-front estimate
    switched off, so the write itself fails) fills it: exit 11, one line, the first build byte-identical, no
    partial folder left."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir(), out.mkdir()
    script = DISK_SCRIPT.format(size="12m", python=sys.executable, recipes=RECIPES, name=NAME)
    env = {**os.environ, "W": str(mnt), "OUT": str(out), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (out / "first.rc").read_text().strip() == "0", (out / "first.err").read_text()
    assert (out / "second.rc").read_text().strip() == "11", (out / "second.err").read_text()
    line = one_line((out / "second.err").read_text())
    assert line.startswith(f"error: the disk filled up while writing {NAME}'s checkpoint in ")
    assert "earlier results are intact; fix: free space or use --workdir on a larger disk" in line
    assert (out / "before.sum").read_text() == (out / "after.sum").read_text()
    assert "build.json" in (out / "before.sum").read_text()
    assert not [n for n in (out / "ls").read_text().split() if ".partial-" in n or ".old-" in n]
    # Up front: the estimate alone refuses a build that cannot fit, in MB rather than "0.0 GB".
    assert (out / "early.rc").read_text().strip() == "11"
    early = one_line((out / "early.err").read_text())
    assert "not enough disk space" in early and " MB needed, " in early and " MB free" in early
    # A disk with nothing left: eval and card end in one line too (the lock file is their first write).
    for stage in ("eval", "card"):
        assert (out / f"{stage}.rc").read_text().strip() == "11", (out / f"{stage}.err").read_text()
        line = one_line((out / f"{stage}.err").read_text())
        assert line.startswith("error: the disk filled up while writing ") and "kB free now" in line, line
    assert (out / "full.before").read_text() == (out / "full.after").read_text()


def test_a_full_disk_inside_any_stage_is_one_line(tmp_path: Path) -> None:
    """Whatever a stage writes (eval.json, the card, a baseline), ENOSPC under the recipe lock is DiskSpaceError."""
    import errno

    from zoo.errors import DiskSpaceError
    from zoo.lock import stage_lock
    from zoo.workdir import Layout

    layout = Layout(tmp_path / "work", NAME)
    with pytest.raises(DiskSpaceError, match=f"while writing {NAME}'s eval results") as info:
        with stage_lock(layout, "eval"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.exit_code == 11
    assert not (tmp_path / "work").exists()  # the lock and the folders it made are gone


@pytest.mark.parametrize("damage", ["folder is a file", "lock is a folder"])
def test_an_unusable_recipe_folder_is_one_line(tmp_path: Path, damage: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    if damage == "folder is a file":
        (work / NAME).write_text("x")
    else:
        (work / NAME / ".zoo.lock").mkdir(parents=True)
    code, err = zoo("build", NAME, "--device", "cpu", workdir=work)
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"error: cannot use {work / NAME} for {NAME} (") and "fix: make it a writable folder" in line


def test_checkpoint_files_have_normal_permissions(once: Path) -> None:
    """safetensors writes through a 0600 temporary file; the published checkpoint must be readable like the rest."""
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (once / NAME / "model").iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o666 & ~mask}, modes
