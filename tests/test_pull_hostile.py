"""``zoo pull`` against an attacker-run Hub-protocol server, round three (#28): forged output, a signed
release of another variant, rollback to an older signed release, a file served larger than listed,
and the lines a missing parent folder or a second concurrent pull used to get.

As in test_security.py (both use the fixtures of tests/hostile.py), every command runs as a user runs it, with the real
huggingface_hub client against tests/hub_server.py. The freshness record goes to a folder per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import hostile
from tests.conftest import RECIPES
from tests.hostile import MANIFEST, NAME, crafted, error_line, snapshot, zoo
from tests.hub_server import HubServer
from tests.test_signing import keypair

release, work, home = hostile.release, hostile.work, hostile.home  # its fixtures, used here

FORGED = "signed by key publisher.pub.pem: the release manifest's signature verifies"
GPTQ = "tiny-llama3-gptq-4bit"


def pull(hub: HubServer, cwd: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return zoo(hub, cwd, "pull", *args, env={"ZOO_STATE_DIR": str(state)})


def push(hub: HubServer, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = zoo(hub, workdir.parent, "push", NAME, "--workdir", str(workdir), *args)
    assert res.returncode == 0, res.stderr
    return res


def safetensors(metadata: dict[str, str]) -> bytes:
    header = json.dumps({"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0\0\0\0"


def signed_release(keys: Path, repo: str, name: str, built: str, note: bytes) -> dict[str, bytes]:
    """A format-2 release of recipe ``name`` for ``repo``, built at ``built``, its manifest signed with ``keys``."""
    from zoo.publish.manifest import Entry, Identity, dump
    from zoo.publish.sign import Signer, signature

    files = {"config.json": b"{}", "notes.txt": note}
    recipe_sha = "ab" * 32
    build = {"name": name, "created": built, "recipe_sha256": recipe_sha, "files": []}
    files["build.json"] = json.dumps(build).encode()
    entries = [Entry(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items()]
    manifest = dump(Identity(name, repo, recipe_sha, built, None), entries)
    sig = signature(keys / f"sig-{hashlib.sha1(manifest).hexdigest()}", manifest, Signer(keys / "publisher.pem"), lambda: None)
    return {**files, MANIFEST: manifest, "zoo-release.sig": sig}


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    keypair(folder, "publisher")
    return folder


def test_strings_from_the_weights_headers_cannot_forge_output(hub: HubServer, home: Path, tmp_path: Path) -> None:
    """The provenance line printed header values as they were: ESC reached the terminal and a newline
    started a line of zoo's own, here a "signed by" claim on an unsigned pull."""
    hostile = f"x\n{FORGED}\n\x1b[2J\x1b]0;title\x07\u202e"
    meta = {f"zoo.{k}": hostile for k in ("version", "recipe", "recipe_sha256", "method", "base", "base_revision")}
    hub.state.craft("zoo-hostile/forged", crafted({"model.safetensors": safetensors(meta)}), tag="release-00000000f0f0")
    res = pull(hub, home, tmp_path / "state", "zoo-hostile/forged", "--local-dir", "dl")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert not [line for line in out.splitlines() if line.startswith("signed by")]
    assert "provenance (from the weights' headers)" in res.stdout and "x\\x0asigned by" in res.stdout


def test_a_signed_release_of_another_variant_is_refused(hub: HubServer, work: Path, home: Path, tmp_path: Path) -> None:
    """The validly signed RTN release, copied into the GPTQ repo, passed --verify-with and delivered RTN
    weights: the signature covered the files, not which release they are."""
    from zoo.catalog import load
    from zoo.publish.manifest import parse

    keys = tmp_path / "keys"
    keys.mkdir()
    private, public = keypair(keys, "publisher")
    rtn_repo, gptq_repo = load(NAME, RECIPES).repo_id, load(GPTQ, RECIPES).repo_id
    push(hub, work, "--sign-key", str(private))  # to the RTN recipe's own repo
    r = hub.state.repos[rtn_repo]
    files = {p: e.data for p, e in r.commits[r.refs["main"]]["files"].items()}
    identity = parse(files[MANIFEST], "test").identity
    assert identity is not None and (identity.name, identity.repo_id) == (NAME, rtn_repo)
    assert identity.recipe_sha256 == json.loads(files["build.json"])["recipe_sha256"]
    state = tmp_path / "state"
    ok = pull(hub, home, state, NAME, "--local-dir", "rtn", "--verify-with", str(public))
    assert ok.returncode == 0, ok.stderr
    assert f"release (from the manifest, signed): recipe {NAME} " in ok.stdout and f"for {rtn_repo}" in ok.stdout

    # a signed manifest in the old format, which names no repo
    from zoo.publish.sign import Signer, signature

    manifest = json.dumps({"format": 1, "name": NAME, "files": json.loads(files[MANIFEST])["files"]}).encode()
    sig = signature(keys / "old", manifest, Signer(private), lambda: None)
    hub.state.craft("zoo-hostile/format1", {**files, MANIFEST: manifest, "zoo-release.sig": sig}, tag="release-0000000000bb")

    hub.state.craft(gptq_repo, files, tag="release-0000000000aa")  # the publisher's files, byte for byte
    before = snapshot(home.parent, skip=home / "rtn")
    for asked in (GPTQ, gptq_repo):
        line = error_line(pull(hub, home, state, asked, "--local-dir", "dl", "--verify-with", str(public)), 10)
        assert f"is the release of {rtn_repo} (recipe {NAME}), not of " in line and "nothing was written" in line
    assert snapshot(home.parent, skip=home / "rtn") == before
    # the old format is refused with --verify-with (it cannot say which release it is), still read without
    line = error_line(pull(hub, home, state, "zoo-hostile/format1", "--local-dir", "dl", "--verify-with", str(public)), 10)
    assert "(format 1) does not name the recipe and repo" in line and "without --verify-with" in line
    assert snapshot(home.parent, skip=home / "rtn") == before
    res = pull(hub, home, state, "zoo-hostile/format1", "--local-dir", "dl")
    assert res.returncode == 0, res.stderr


def test_an_older_signed_release_retagged_as_newest_is_refused(hub: HubServer, home: Path, keys: Path, tmp_path: Path) -> None:
    from zoo.publish.manifest import tag_for

    repo, state, public = "zoo-hostile/rollback", tmp_path / "state", str(keys / "publisher.pub.pem")
    old = signed_release(keys, repo, "tiny-llama3-rtn-4bit", "2026-01-01T00:00:00+00:00", b"flawed\n")
    new = signed_release(keys, repo, "tiny-llama3-rtn-4bit", "2026-02-01T00:00:00+00:00", b"fixed\n")
    old_tag = tag_for(old[MANIFEST])
    hub.state.craft(repo, old, tag=old_tag)
    hub.state.craft(repo, new, tag=tag_for(new[MANIFEST]))
    res = pull(hub, home, state, repo, "--local-dir", "dl", "--verify-with", public)
    assert res.returncode == 0, res.stderr
    assert (home / "dl" / "notes.txt").read_bytes() == b"fixed\n"
    assert (state / "pulls.json").is_file()

    hub.state.craft(repo, old, tag="release-ffffffffffff")  # whoever holds the repo re-tags the old release as newest
    before = snapshot(home.parent)
    line = error_line(pull(hub, home, state, repo, "--local-dir", "dl", "--verify-with", public), 10)
    assert "older than one already verified" in line and "--allow-older" in line and "nothing was written" in line
    assert snapshot(home.parent) == before
    # the user may take it anyway, with a warning, and an explicit --revision pulls what was asked, with a warning
    for extra in (["--allow-older"], ["--revision", old_tag]):
        res = pull(hub, home, state, repo, "--local-dir", "dl", "--verify-with", public, *extra)
        assert res.returncode == 0, res.stderr
        assert "before release-" in res.stderr and ("--allow-older allows" in res.stderr or "--revision asks" in res.stderr)
        assert (home / "dl" / "notes.txt").read_bytes() == b"flawed\n"
    # pulling the older one on purpose does not lower the mark
    error_line(pull(hub, home, state, repo, "--local-dir", "dl2", "--verify-with", public), 10)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_file_served_larger_than_listed_is_cut_off(hub: HubServer, home: Path, tmp_path: Path, declared: bool) -> None:
    """A server that listed 4 KB and streamed 300 MB got all of it written before the check, and exit 5."""
    repo = f"zoo-hostile/oversize-{declared}"
    hub.state.craft(repo, crafted({"model.safetensors": b"\1" * 4096}), tag="release-0000000000cc")
    hub.state.oversize[f"{repo}/model.safetensors"] = (300 << 20, declared)
    before = snapshot(home.parent)
    line = error_line(pull(hub, home, tmp_path / "state", repo, "--local-dir", "dl"), 10)
    assert "sent more than the 4096 bytes" in line and "'model.safetensors'" in line and "nothing was kept" in line
    assert snapshot(home.parent) == before  # the partial file (never more than 4096 bytes) is gone with its folder


def test_local_dir_parents_are_created_and_removed_again_on_failure(hub: HubServer, home: Path, tmp_path: Path) -> None:
    """A missing parent exited 5, "the connection to the Hub broke ... check the network"."""
    hub.state.craft("zoo-hostile/parents", crafted({"config.json": b"{}"}), tag="release-0000000000dd")
    res = pull(hub, home, tmp_path / "state", "zoo-hostile/parents", "--local-dir", "a/b/dl")
    assert res.returncode == 0, res.stderr
    assert (home / "a" / "b" / "dl" / "config.json").read_bytes() == b"{}"
    before = snapshot(home.parent)
    line = error_line(pull(hub, home, tmp_path / "state", "zoo-hostile/absent", "--local-dir", "x/y/dl"), 5)
    assert "not found" in line
    line = error_line(pull(hub, home, tmp_path / "state", "zoo-hostile/parents", "--local-dir", "victim.txt/dl"), 2)
    assert "victim.txt is not a folder" in line
    assert snapshot(home.parent) == before


def test_a_second_pull_into_the_same_folder_is_busy(home: Path, tmp_path: Path) -> None:
    """Two pulls into one folder moved files under each other; the second one exited 5."""
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    first = None
    try:
        server.state.craft("zoo-hostile/busy", crafted({"model.safetensors": b"\2" * 4096}), tag="release-0000000000ee")
        server.state.stall = [r"^GET /zoo-hostile/busy/resolve/.*/model\.safetensors$"]
        argv, env = _pull_command(server, tmp_path / "state", "zoo-hostile/busy", "--local-dir", "dl")
        first = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not any("model.safetensors" in r for r in server.state.requests) and time.time() < deadline:
            time.sleep(0.1)  # the first pull holds the folder, stalled on the weights
        line = error_line(pull(server, home, tmp_path / "state", "zoo-hostile/busy", "--local-dir", "dl"), 12)
        assert "is being written by another `zoo pull`" in line and "fix: wait for it to finish" in line
    finally:
        server.stop()  # the stalled request is closed: the first pull ends
        if first is not None:
            first.communicate(timeout=120)


def _pull_command(hub: HubServer, state: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment ``zoo()`` would run ``zoo pull`` with, for a pull left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(Path(os.environ.get("HF_HOME", "/tmp")) / "security-hf-home"),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        ZOO_HUB_TIMEOUT="60",
        ZOO_STATE_DIR=str(state),
        HF_TOKEN=hub.state.token,
    )
    return [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "pull", *args], env


def test_a_manifest_of_nested_brackets_is_malformed_not_a_traceback() -> None:
    from zoo.errors import VerifyError
    from zoo.publish.manifest import parse

    with pytest.raises(VerifyError, match="zoo-release.json is malformed"):
        parse(b"[" * 200_000 + b"]" * 200_000, "someone/x@main")
    with pytest.raises(VerifyError, match="zoo-release.json is malformed"):
        parse(b'{"format": 2, "files": ' + b"[" * 100 + b"]" * 100 + b"}", "someone/x@main")


def test_a_link_at_the_pull_record_never_fails_a_verified_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.publish import fresh
    from zoo.publish.manifest import Identity

    monkeypatch.setenv("ZOO_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    (tmp_path / "state" / fresh.FILE).symlink_to(victim)
    release = Identity("tiny-llama3-rtn-4bit", "zoo-tiny/x", "0" * 64, "2026-12-01T00:00:00+00:00", None)
    fresh.record("http://127.0.0.1:1", "zoo-tiny/x", "unsigned", release, "a" * 40, "release-000000000000")
    assert victim.read_text() == "keep me\n"
