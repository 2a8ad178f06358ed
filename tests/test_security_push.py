"""The hostile-repo suite, push side: exact operations and tags, invalid names and refs, stale inputs, tokens,
failing servers, the release workflow, workdir files as data, and a small disk (pull side: test_security.py).

Every command runs as a user runs it (``python -m zoo`` in a subprocess) with the real huggingface_hub client
against ``tests/hub_server.py``; the shared release and helpers are ``tests/hostile.py``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import hostile
from tests.conftest import RECIPES, ROOT
from tests.hostile import MANIFEST, NAME, error_line, files_at, published, snapshot, zoo
from tests.hub_server import HubServer

release, work, home = hostile.release, hostile.work, hostile.home  # the shared fixtures, used here

# -- push: exact operations and tags ---------------------------------------------------------------


def test_push_deletes_and_uploads_names_literally(hub: HubServer, work: Path) -> None:
    """``delete_patterns`` are globs: a remote ``*.safetensors`` used to delete the checkpoint too."""
    repo = "zoo-sec/globs"
    hub.state.craft(repo, {"*.safetensors": b"x", "[ct]onfig.json": b"y", "a b.txt": b"z", "config.json": b"old"})
    weird = "odd [1] *?.txt"
    (work / NAME / "card" / weird).write_text("literal\n")
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    head = files_at(hub, repo)
    assert not {"*.safetensors", "[ct]onfig.json", "a b.txt"} & set(head)
    assert head[weird] == b"literal\n"
    assert head["config.json"] == (work / NAME / "model" / "config.json").read_bytes()
    assert "model.safetensors" in head and MANIFEST in head
    listed = {f["path"] for f in json.loads(head[MANIFEST])["files"]}
    assert listed == set(head) - {MANIFEST}
    res = zoo(hub, work.parent, "pull", repo, "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    assert (work.parent / "dl" / weird).read_text() == "literal\n"


def test_existing_tag_on_another_commit_is_an_error(hub: HubServer, work: Path) -> None:
    repo = "zoo-sec/tags"
    first = published(hub, work, repo)
    with (work / NAME / "card" / "README.md").open("a") as f:
        f.write("\nchanged\n")
    dry = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work), "--dry-run")
    tag = re.search(r"tag (release-[0-9a-f]{12})", dry.stdout)
    assert dry.returncode == 0 and tag, dry.stdout + dry.stderr
    hub.state.repos[repo].refs[tag.group(1)] = first  # someone tagged the old commit with the new content's tag
    commits = len(hub.state.repos[repo].commits)
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work)), 5)
    assert f"tag {tag.group(1)}" in line and line.count(first) == 2 and "hf repos tag delete" in line
    assert len(hub.state.repos[repo].commits) == commits


@pytest.mark.parametrize("repo_id", ["a/b/c", "a/..", "../a", "-x/y", "a/b c", "a/b;rm", "a", "a/b.git"])
def test_invalid_repo_ids_fail_before_any_request(hub: HubServer, work: Path, repo_id: str) -> None:
    n = len(hub.state.requests)
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", repo_id, "--workdir", str(work)), 2)
    assert f"invalid repo id {repo_id!r}" in line
    if "/" in repo_id:
        line = error_line(zoo(hub, work, "pull", "--local-dir", "dl", "--", repo_id), 2)
        assert "invalid repo id" in line
    assert len(hub.state.requests) == n and not (work / "dl").exists()


def test_option_shaped_ref_never_reaches_git_as_an_option(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(RECIPES, repo / "recipes")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "recipes"], check=True)
    target = tmp_path / "clobbered"
    target.write_text("keep\n")
    for ref in (f"--output={target}", "-p", "--no-index"):
        res = subprocess.run(
            [sys.executable, "-m", "zoo", "--recipes", str(repo / "recipes"), "matrix", f"--changed-since={ref}"],
            capture_output=True,
            text=True,
            cwd=repo,
        )
        line = error_line(res, 2)
        assert "is not a commit in this git repository" in line
    assert target.read_text() == "keep\n"


def test_option_and_path_shaped_revisions_are_data(hub: HubServer, work: Path, home: Path) -> None:
    repo = "zoo-sec/revisions"
    published(hub, work, repo)
    before = snapshot(home.parent)
    for rev in (f"--output={home / 'victim.txt'}", "../../api/whoami-v2"):
        line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl", "--revision", rev), 5)
        assert "not found in zoo-sec/revisions" in line
    assert snapshot(home.parent) == before
    for rev in ("-x", "a b", "../main"):
        line = error_line(zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work), "--revision", rev), 2)
        assert f"invalid branch {rev!r}" in line


# -- push: never publish what does not belong to the build -------------------------------------------


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("stale", ["model", "recipe", "eval", "card-build", "card-keys", "no-card"])
def test_push_refuses_stale_inputs(hub: HubServer, work: Path, stale: str) -> None:
    folder = work / NAME
    card = json.loads((folder / "card" / "card.json").read_text())
    if stale == "model":
        _flip(folder / "model" / "model.safetensors")
        want = "no longer matches build.json"
    elif stale == "recipe":  # the recipe was edited since the build: the release would misdescribe it
        record = json.loads((folder / "build.json").read_text())
        (folder / "build.json").write_text(json.dumps({**record, "recipe_sha256": "0" * 64}))
        want = "is of an older recipe; fix: zoo build"
    elif stale == "eval":
        from zoo.records import Baseline, EvalRecord

        stale_eval = EvalRecord(
            name=NAME, created="2026-01-01T00:00:00+00:00", build_sha256="0" * 64, suite_sha256="0" * 64,
            recipe_sha256=None, suite={}, limit=None, batch_size=1, seed=0, dtype="float32", device="cpu",
            duration_s=1.0, metrics={}, details={}, baseline=Baseline(metrics={}), recovery={},
        )  # fmt: skip
        (folder / "eval.json").write_text(stale_eval.model_dump_json())
        want = "eval.json measured an earlier build"
    elif stale == "card-build":
        (folder / "card" / "card.json").write_text(json.dumps({**card, "build_sha256": "0" * 64}))
        want = "fix: zoo card"
    elif stale == "card-keys":
        (folder / "card" / "card.json").write_text(
            json.dumps({k: v for k, v in card.items() if k not in ("build_sha256", "eval_sha256")})
        )
        want = "fix: zoo card"
    else:
        shutil.rmtree(folder / "card")
        want = "has no card"
    n = len(hub.state.requests)
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", "zoo-sec/stale", "--workdir", str(work)), 8)
    assert want in line
    assert len(hub.state.requests) == n


def test_leftover_push_staging_does_not_break_a_rerun(hub: HubServer, work: Path) -> None:
    (work / NAME / ".push" / "model.safetensors").parent.mkdir(parents=True)
    (work / NAME / ".push" / "model.safetensors").write_bytes(b"half")
    published(hub, work, "zoo-sec/leftover")
    assert not (work / NAME / ".push").exists()


# -- tokens, dry runs, rate limits, stalls ------------------------------------------------------------


def test_dry_runs_need_no_token(hub: HubServer, work: Path) -> None:
    res = zoo(hub, work, "push", NAME, "--repo-id", "zoo-sec/absent", "--workdir", str(work), "--dry-run", token=None)
    assert res.returncode == 0, res.stderr
    assert "would upload  model.safetensors" in res.stdout and "the local plan" in res.stdout
    published(hub, work, "zoo-sec/public")
    res = zoo(hub, work, "push", NAME, "--repo-id", "zoo-sec/public", "--workdir", str(work), "--dry-run", token=None)
    assert res.returncode == 0, res.stderr
    assert "0 to upload, 0 to delete" in res.stdout and "compared anonymously" in res.stdout


def test_rejected_and_read_only_tokens_exit_9(hub: HubServer, work: Path, home: Path) -> None:
    published(hub, work, "zoo-sec/tokens")
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", "zoo-sec/tokens", "--workdir", str(work), token="hf_bad"), 9)
    assert "rejected (HTTP 401)" in line
    reader = f"hf_{secrets.token_hex(8)}"
    hub.state.read_tokens.add(reader)
    line = error_line(zoo(hub, work, "push", NAME, "--repo-id", "other-org/x", "--workdir", str(work), token=reader), 9)
    assert "cannot write to 'other-org' (HTTP 403" in line
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", "zoo-sec/tokens", "--local-dir", "dl", token="hf_bad"), 9)
    assert "rejected (HTTP 401)" in line and "network" not in line
    assert snapshot(home.parent) == before


def test_429_is_retried_after_retry_after(hub: HubServer, work: Path) -> None:
    hub.state.retry_after = "1"
    hub.state.throttle = {r"^POST /api/models/zoo-sec/limited/commit/": 2, r"^GET /api/models/zoo-sec/limited/refs": 1}
    start = time.time()
    published(hub, work, "zoo-sec/limited")
    assert time.time() - start >= 2  # waited as told
    assert hub.state.throttle == {r"^POST /api/models/zoo-sec/limited/commit/": 0, r"^GET /api/models/zoo-sec/limited/refs": 0}
    hub.state.retry_after = "0"
    hub.state.throttle = {r"^GET /api/models/zoo-sec/limited/refs": 1000}
    try:
        line = error_line(zoo(hub, work, "push", NAME, "--repo-id", "zoo-sec/limited", "--workdir", str(work)), 5)
    finally:
        hub.state.throttle = {}
    assert "rate limiting" in line and "HTTP 429" in line


def test_a_stalled_server_fails_in_bounded_time_and_a_rerun_resumes(work: Path, home: Path) -> None:
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    try:
        published(server, work, "zoo-sec/stall")
        server.state.stall = [r"^GET /zoo-sec/stall/resolve/.*/model\.safetensors$"]
        before = snapshot(home.parent, skip=home / "dl")
        start = time.time()
        res = zoo(server, home, "pull", "zoo-sec/stall", "--local-dir", "dl", env={"ZOO_HUB_TIMEOUT": "1"})
        line = error_line(res, 5)
        assert time.time() - start < 90
        assert "did not answer within 1s" in line and "re-run" in line
        assert snapshot(home.parent, skip=home / "dl") == before
        server.state.stall = []
        res = zoo(server, home, "pull", "zoo-sec/stall", "--local-dir", "dl")
        assert res.returncode == 0, res.stderr
    finally:
        server.stop()


# -- the release workflow ---------------------------------------------------------------------------


def test_release_workflow_keeps_matrix_values_out_of_shell_and_the_token_on_publish_steps() -> None:
    import yaml

    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert wf["permissions"] == {} or wf["permissions"] == {"contents": "read"}
    for job in wf["jobs"].values():
        assert "HF_TOKEN" not in json.dumps(job.get("env", {}))
        for step in job["steps"]:
            run = step.get("run", "")
            assert "${{" not in run, run  # values reach shell only through env
            if "secrets.HF_TOKEN" in json.dumps(step.get("env", {})):
                assert re.search(r"\bzoo (push|release|collection sync)\b", run) and "--dry-run" not in run, step


# -- workdir files are data -----------------------------------------------------------------------------


class _Planted:
    """Unpickling this would create ``marker``: what a planted training checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_training_checkpoints_cannot_run_code(tmp_path: Path) -> None:
    import torch

    from zoo.lora.train import _resume

    marker = tmp_path / "pwned"
    folder = tmp_path / "train"
    folder.mkdir()
    torch.save({"key": "k", "step": 3, "payload": _Planted(marker)}, folder / "checkpoint-0000003.pt")
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    assert _resume(folder, model, optimizer, "k") == (0, [])  # refused, so training starts afresh
    assert not marker.exists()


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare for a small tmpfs")
def test_pull_onto_a_small_disk_is_refused_up_front(hub: HubServer, work: Path, tmp_path: Path) -> None:
    """A 2 MB filesystem cannot hold the 3.9 MB release: exit 11 before downloading, nothing left behind."""
    published(hub, work, "zoo-tiny/disk")
    mnt = tmp_path / "small"
    mnt.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"))
    script = f'mount -t tmpfs -o size=2m tmpfs "{mnt}" || exit 99; "$@"; rc=$?; ls -A "{mnt}"; exit $rc'
    cmd = [sys.executable, "-m", "zoo", "pull", "zoo-tiny/disk", "--local-dir", str(mnt / "disk")]
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *cmd], env=env, capture_output=True, text=True, timeout=300)
    if res.returncode == 99:
        pytest.skip("this machine cannot mount a tmpfs in a user namespace")
    line = error_line(res, 11)
    assert "not enough disk space" in line and "zoo-tiny/disk@" in line and "MB needed" in line
    assert line.endswith("fix: free space or use --local-dir on a larger disk")
    assert res.stdout.strip() == ""  # the target folder was removed again: nothing kept
