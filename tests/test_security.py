"""The hostile-repo suite: ``zoo pull`` against crafted repos, names, refs and failing servers.

Everything runs as a user runs it (``python -m zoo`` in a subprocess) with the real huggingface_hub
client against ``tests/hub_server.py``. Each test asserts the exit code, the one ``error:`` line and,
for pulls, that no byte outside the intended folder changed (the surroundings are hashed before and
after). The release is a tiny RTN build (seconds on a CPU) without an evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests import hostile
from tests.hostile import MANIFEST, NAME, crafted, error_line, files_at, manifest_for, published, snapshot, zoo
from tests.hub_server import HubServer

release, work, home = hostile.release, hostile.work, hostile.home  # the shared fixtures, used here

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
