"""The hostile-repo suite: ``zoo pull`` / ``zoo push`` against crafted repos, names, refs and failing servers.

Everything runs as a user runs it (``python -m zoo`` in a subprocess) with the real huggingface_hub
client against ``tests/hub_server.py``. Each test asserts the exit code, the one ``error:`` line and,
for pulls, that no byte outside the intended folder changed (the surroundings are hashed before and
after). The release is a tiny RTN build (seconds on a CPU) without an evaluation.
"""

from __future__ import annotations

import hashlib
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

from tests.conftest import RECIPES, ROOT
from tests.hub_server import HubServer

NAME = "tiny-llama3-rtn-4bit"
MANIFEST = "zoo-release.json"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built, carded tiny variant (no eval.json) in its own workdir; tests copy it before changing it."""
    from zoo.quantize import build
    from zoo.card import render
    from zoo.catalog import load, recipe_paths
    from zoo.recipe import load_recipe

    work = tmp_path_factory.mktemp("release")
    build(load(NAME, RECIPES), work, RECIPES, device="cpu")
    render(load(NAME, RECIPES), [load_recipe(p) for p in recipe_paths(RECIPES)], work)
    return work


@pytest.fixture
def work(release: Path, tmp_path: Path) -> Path:
    """A private copy of the release workdir."""
    dest = tmp_path / "work"
    shutil.copytree(release / NAME, dest / NAME, ignore=shutil.ignore_patterns(".zoo.lock"))
    return dest


def zoo(
    hub: HubServer, cwd: Path, *args: str, token: str | None = "default", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    base.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(Path(os.environ.get("HF_HOME", "/tmp")) / "security-hf-home"),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        ZOO_HUB_TIMEOUT="20",
    )
    if token is not None:
        base["HF_TOKEN"] = hub.state.token if token == "default" else token
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), *args],
        env=base,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def error_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    """The one ``error:`` line of a failed command, after checking its exit code and that no traceback leaked."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every path under ``root`` (but ``skip``) with its content hash, link target or kind."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def published(hub: HubServer, work: Path, repo: str) -> str:
    """Push the release in ``work`` to ``repo``; the commit it made."""
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    return hub.state.repos[repo].refs["main"]


def files_at(hub: HubServer, repo: str, rev: str = "main") -> dict[str, bytes]:
    r = hub.state.repos[repo]
    return {p: e.data for p, e in r.commits[r.refs.get(rev, rev)]["files"].items()}


def manifest_for(files: dict[str, bytes], extra: list[dict[str, object]] | None = None) -> bytes:
    entries = [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in sorted(files.items())]
    return json.dumps({"format": 1, "name": "crafted", "files": entries + (extra or [])}).encode()


def crafted(files: dict[str, bytes]) -> dict[str, bytes]:
    """A minimal self-consistent release: ``files`` plus a build.json listing them, plus its manifest."""
    build = json.dumps(
        {"files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()]}
    )
    out = {**files, "build.json": build.encode()}
    return {**out, MANIFEST: manifest_for(out)}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The user's folder: a victim file beside the pull target, and the target's path."""
    h = tmp_path / "home"
    h.mkdir()
    (h / "victim.txt").write_bytes(b"precious\n")
    (h / "project").mkdir()
    (h / "project" / "main.py").write_text("print('hi')\n")
    return h


# -- pull: confinement ---------------------------------------------------------------------------


def test_push_then_pull_round_trip_and_update(hub: HubServer, work: Path, home: Path) -> None:
    repo = "zoo-sec/roundtrip"
    first = published(hub, work, repo)
    tags = {n: c for n, c in hub.state.repos[repo].refs.items() if n.startswith("release-")}
    assert list(tags.values()) == [first]
    before = snapshot(home.parent, skip=home / "dl")
    res = zoo(hub, home, "pull", repo, "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    assert f"commit {first}" in res.stdout and "verified" in res.stdout
    # the weights carry their provenance in their safetensors headers, and pull shows it
    assert f"provenance (from the weights' headers): zoo 0.1.0, recipe {NAME} (sha256 " in res.stdout
    assert "rtn on tiny-llama3@" in res.stdout
    assert snapshot(home.parent, skip=home / "dl") == before
    for p, data in files_at(hub, repo).items():
        if p not in (".gitattributes", MANIFEST):
            assert (home / "dl" / p).read_bytes() == data
    record = json.loads((home / "dl" / ".zoo" / "pull.json").read_text())
    assert record["commit"] == first and record["revision"] in tags
    assert not (home / "dl" / ".zoo" / "staging").exists()

    # a card change is a new release: a new commit, a new tag on it, the old tag untouched
    with (work / NAME / "card" / "README.md").open("a") as f:
        f.write("\nOne more line.\n")
    res = zoo(hub, work, "push", NAME, "--repo-id", repo, "--workdir", str(work))
    assert res.returncode == 0, res.stderr
    second = hub.state.repos[repo].refs["main"]
    new_tags = {n: c for n, c in hub.state.repos[repo].refs.items() if n.startswith("release-") and n not in tags}
    assert second != first and list(new_tags.values()) == [second]
    assert f"tag {next(iter(new_tags))}" in res.stdout and second in res.stdout
    assert {n: hub.state.repos[repo].refs[n] for n in tags} == tags

    # pulling the newer release into the same folder replaces only what changed
    before = snapshot(home.parent, skip=home / "dl")
    res = zoo(hub, home, "pull", repo, "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    assert f"commit {second}" in res.stdout
    assert (home / "dl" / "README.md").read_text().endswith("One more line.\n")
    assert snapshot(home.parent, skip=home / "dl") == before
    # --revision pins the older release
    res = zoo(hub, home, "pull", repo, "--local-dir", "dl", "--revision", next(iter(tags)))
    assert res.returncode == 0 and f"commit {first}" in res.stdout, res.stderr
    assert not (home / "dl" / "README.md").read_text().endswith("One more line.\n")


@pytest.mark.parametrize(
    "bad",
    [
        "../victim.txt",
        "../../home/victim.txt",
        "a/../../victim.txt",
        "VICTIM_ABS",
        "C:/x",
        "a\\..\\b",
        "./a",
        "a//b",
        ".zoo/pull.json",
        ".git/config",
        "sub/.git/hooks/post-checkout",
    ],
)
def test_pull_rejects_unsafe_manifest_paths(hub: HubServer, home: Path, bad: str) -> None:
    """The old pull deleted (or counted as verified) whatever build.json named, outside its folder."""
    victim = home / "victim.txt"
    bad = str(victim) if bad == "VICTIM_ABS" else bad
    repo = f"zoo-sec/manifest-{hashlib.sha1(bad.encode()).hexdigest()[:8]}"
    files = crafted({"config.json": b"{}"})
    entry = {"path": bad, "size": victim.stat().st_size, "sha256": hashlib.sha256(victim.read_bytes()).hexdigest()}
    files[MANIFEST] = manifest_for({p: d for p, d in files.items() if p != MANIFEST}, [entry])
    hub.state.craft(repo, files, tag="release-000000000001")
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 10)
    assert "unsafe path" in line and "nothing was written" in line
    assert snapshot(home.parent) == before  # the target was not even created


def test_pull_rejects_unsafe_paths_in_the_tree(hub: HubServer, home: Path) -> None:
    repo = "zoo-sec/tree"
    files = crafted({"config.json": b"{}"})
    hub.state.craft(repo, {**files, "../victim.txt": b"overwritten"}, tag="release-000000000002")
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 10)
    assert "unsafe path '../victim.txt'" in line and "file list" in line
    assert snapshot(home.parent) == before


def test_pull_refuses_a_folder_with_foreign_files(hub: HubServer, work: Path, home: Path) -> None:
    """The old pull deleted a checkout's files (``.git`` included) as "extra"."""
    repo = "zoo-sec/foreign"
    published(hub, work, repo)
    (home / "project" / ".git").mkdir()
    (home / "project" / ".git" / "config").write_text("[core]\n")
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "project"), 2)
    assert "holds files that are not from an earlier `zoo pull`" in line and "--force" in line
    assert snapshot(home.parent) == before
    # --force overwrites only what the release lists: README.md here; the rest stays
    (home / "project" / "README.md").write_text("mine\n")
    res = zoo(hub, home, "pull", repo, "--local-dir", "project", "--force")
    assert res.returncode == 0, res.stderr
    assert (home / "project" / "main.py").read_text() == "print('hi')\n"
    assert (home / "project" / ".git" / "config").read_text() == "[core]\n"
    assert (home / "project" / "README.md").read_bytes() == files_at(hub, repo)["README.md"]
    # a pull of another repo into that folder is refused again
    line = error_line(zoo(hub, home, "pull", "zoo-sec/other", "--local-dir", "project"), 2)
    assert "not from an earlier `zoo pull` of zoo-sec/other" in line


def test_forced_pull_never_writes_through_a_symlink(hub: HubServer, home: Path) -> None:
    repo = "zoo-sec/symlink"
    hub.state.craft(repo, crafted({"sub/victim.txt": b"overwritten"}), tag="release-000000000005")
    (home / "dl").mkdir()
    (home / "dl" / "sub").symlink_to(home)  # planted: sub/victim.txt would be home/victim.txt
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl", "--force"), 10)
    assert "'sub/victim.txt'" in line and "is not a folder inside" in line
    assert snapshot(home.parent) == before


@pytest.mark.parametrize("planted", ["staging", "staging/commit", "pull.json"])
def test_links_planted_in_the_pull_state_are_refused(hub: HubServer, work: Path, home: Path, planted: str) -> None:
    """``.zoo`` is zoo's own: a link in it (staging pointing at another folder, whose entries staging would
    delete, or a planted staging/<commit> that downloads would be written through) is refused up front."""
    repo = "zoo-sec/planted"
    if repo not in hub.state.repos:
        published(hub, work, repo)
    commit = hub.state.repos[repo].refs["main"]
    elsewhere = home / "elsewhere"
    (elsewhere / "keepdir").mkdir(parents=True)
    (elsewhere / "keepdir" / "precious.txt").write_text("keep me")
    state = home / "dl" / ".zoo"
    if planted == "staging":
        state.mkdir(parents=True)
        (state / "staging").symlink_to(elsewhere)
    elif planted == "staging/commit":
        (state / "staging").mkdir(parents=True)
        (state / "staging" / commit).symlink_to(elsewhere)
    else:
        state.mkdir(parents=True)
        (state / "pull.json").mkdir()
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 2)
    assert "is not zoo's pull state" in line and "nothing was written" in line
    assert snapshot(home.parent) == before


def test_gated_and_read_only_pulls_exit_9(hub: HubServer, work: Path, home: Path) -> None:
    repo = "zoo-sec/gated"
    published(hub, work, repo)
    hub.state.gated.add(repo)
    before = snapshot(home.parent)
    try:
        line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 9)
    finally:
        hub.state.gated.discard(repo)
    assert "is gated (HTTP 403)" in line and "accept" in line
    assert snapshot(home.parent) == before


def test_pull_honours_retry_after_given_as_a_date(hub: HubServer, work: Path, home: Path) -> None:
    from email.utils import formatdate

    repo = "zoo-sec/limited-pull"
    published(hub, work, repo)
    hub.state.retry_after = formatdate(time.time() + 2, usegmt=True)
    hub.state.throttle = {rf"^GET /api/models/{repo}/tree": 1, rf"^GET /{repo}/resolve/.*/config\.json$": 1}
    try:
        start = time.time()
        res = zoo(hub, home, "pull", repo, "--local-dir", "dl")
    finally:
        hub.state.retry_after = "1"
    assert res.returncode == 0, res.stderr
    assert time.time() - start >= 1  # waited until (about) the date, not the 5 s fallback per retry
    assert all(n == 0 for n in hub.state.throttle.values()), hub.state.throttle
    hub.state.throttle = {}


@pytest.mark.parametrize(
    "manifest",
    [
        None,
        b"{not json",
        b"[]",
        b'{"format": 1}',
        b'{"format": 2, "files": []}',
        b'{"format": 1, "files": [{"path": "config.json", "size": 2, "sha256": "xyz"}]}',
        b'{"format": 1, "files": [{"path": "config.json", "size": 2, "sha256": "' + b"0" * 64 + b'"}]}',
    ],
)
def test_missing_or_malformed_manifest_leaves_nothing(hub: HubServer, home: Path, manifest: bytes | None) -> None:
    repo = f"zoo-sec/malformed-{hashlib.sha1(repr(manifest).encode()).hexdigest()[:8]}"
    files = crafted({"config.json": b"{}"})
    del files[MANIFEST]
    if manifest is not None:
        files[MANIFEST] = manifest
    hub.state.craft(repo, files, tag="release-000000000003")
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 10)
    assert MANIFEST in line and ("malformed" in line or "has no" in line)
    assert snapshot(home.parent) == before


def test_unlisted_files_are_never_downloaded(hub: HubServer, home: Path) -> None:
    repo = "zoo-sec/unlisted"
    files = crafted({"config.json": b"{}"})
    hub.state.craft(repo, {**files, "huge.bin": b"\0" * 3_000_000, "notes.md": b"unverified"}, tag="release-000000000004")
    res = zoo(hub, home, "pull", repo, "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (home / "dl").iterdir()) == [".zoo", "build.json", "config.json"]
    assert not any("huge.bin" in r or "notes.md" in r for r in hub.state.requests if "/resolve/" in r)


def test_corrupt_download_keeps_nothing(hub: HubServer, work: Path, home: Path) -> None:
    repo = "zoo-sec/corrupt"
    published(hub, work, repo)
    hub.state.corrupt(repo, "model.safetensors")
    before = snapshot(home.parent)
    line = error_line(zoo(hub, home, "pull", repo, "--local-dir", "dl"), 10)
    assert f"corrupt: model.safetensors sha256 differs from {MANIFEST}" in line and "nothing was kept" in line
    assert snapshot(home.parent) == before


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
