"""Signed releases: ``zoo push --sign-key`` and ``zoo pull --verify-with``, real model-signing and the real
huggingface_hub client against the test Hub, with keys generated here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.hub_server import Entry, HubServer
from tests.test_publish import NAME, zoo

REPO = "zoo-tiny/signed"


def keypair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def head(hub: HubServer, repo: str) -> dict[str, Entry]:
    r = hub.state.repos[repo]
    return r.commits[r.refs["main"]]["files"]


@pytest.fixture(scope="module")
def signed(hub: HubServer, ready: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    keys = tmp_path_factory.mktemp("keys")
    private, public = keypair(keys, "publisher")
    res = zoo(hub, ready, "push", NAME, "--repo-id", REPO, "--sign-key", str(private))
    assert res.returncode == 0, res.stderr
    return private, public


def test_signed_push_publishes_a_signature_of_the_manifest(hub: HubServer, ready: Path, signed: tuple[Path, Path]) -> None:
    files = head(hub, REPO)
    assert {"zoo-release.json", "zoo-release.sig"} <= set(files)
    listed = {f["path"] for f in json.loads(files["zoo-release.json"].data)["files"]}
    assert "zoo-release.sig" not in listed  # the signature signs the manifest; it cannot be inside it
    bundle = json.loads(files["zoo-release.sig"].data)
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")


def test_signed_repush_makes_no_commit(hub: HubServer, ready: Path, signed: tuple[Path, Path]) -> None:
    before = len(hub.state.repos[REPO].commits)
    private, _ = signed
    res = zoo(hub, ready, "push", NAME, "--repo-id", REPO, "--sign-key", str(private))
    assert res.returncode == 0 and "no commit made" in res.stdout, res.stderr
    # a workdir that never signed this release reuses the Hub's signature, which verifies with the same key
    (ready / NAME / "signature" / "zoo-release.sig").unlink()
    res = zoo(hub, ready, "push", NAME, "--repo-id", REPO, "--sign-key", str(private))
    assert res.returncode == 0 and "no commit made" in res.stdout, res.stderr
    res = zoo(hub, ready, "push", NAME, "--repo-id", REPO)  # unsigned, unchanged: the signature stays
    assert res.returncode == 0 and "no commit made" in res.stdout, res.stderr
    assert len(hub.state.repos[REPO].commits) == before and "zoo-release.sig" in head(hub, REPO)


def test_pull_verifies_who_signed(hub: HubServer, ready: Path, signed: tuple[Path, Path], tmp_path: Path) -> None:
    _, public = signed
    res = zoo(hub, ready, "pull", REPO, "--local-dir", str(tmp_path / "dl"), "--verify-with", str(public))
    assert res.returncode == 0, res.stderr
    assert "signed by key publisher.pub.pem" in res.stdout
    assert (tmp_path / "dl" / "model.safetensors").read_bytes() == (ready / NAME / "model" / "model.safetensors").read_bytes()


def test_pull_refuses_another_key(hub: HubServer, ready: Path, signed: tuple[Path, Path], tmp_path: Path) -> None:
    _, other = keypair(tmp_path, "someone-else")
    res = zoo(hub, ready, "pull", REPO, "--local-dir", str(tmp_path / "dl"), "--verify-with", str(other))
    assert res.returncode == 10, res.stderr
    [line] = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert "signature does not verify" in line and "Key mismatch" in line and "nothing was written" in line
    assert not (tmp_path / "dl").exists()


def test_pull_refuses_a_tampered_release(hub: HubServer, ready: Path, signed: tuple[Path, Path], tmp_path: Path) -> None:
    """Someone with write access swaps the weights and rewrites build.json and the manifest to match: every
    file verifies against the manifest, but the manifest no longer verifies against the publisher's key."""
    _, public = signed
    repo = "zoo-tiny/tampered"
    hub.state.craft(repo, {p: e.data for p, e in head(hub, REPO).items()})
    data = {p: e.data for p, e in head(hub, repo).items()}
    weights = bytearray(data["model.safetensors"])
    weights[-1] ^= 0xFF
    data["model.safetensors"] = bytes(weights)
    sha = hashlib.sha256(data["model.safetensors"]).hexdigest()
    build = json.loads(data["build.json"])
    for f in build["files"]:
        if f["path"] == "model.safetensors":
            f["sha256"] = sha
    data["build.json"] = json.dumps(build, indent=2).encode()
    manifest = json.loads(data["zoo-release.json"])
    manifest["repo_id"] = repo  # a consistent forgery: the manifest names the repo it is served from
    for f in manifest["files"]:
        f["sha256"] = hashlib.sha256(data[f["path"]]).hexdigest()
        f["size"] = len(data[f["path"]])
    data["zoo-release.json"] = json.dumps(manifest, indent=2).encode()
    hub.state.craft(repo, data)
    unverified = zoo(hub, ready, "pull", repo, "--local-dir", str(tmp_path / "plain"))
    assert unverified.returncode == 0  # integrity alone cannot tell
    res = zoo(hub, ready, "pull", repo, "--local-dir", str(tmp_path / "dl"), "--verify-with", str(public))
    assert res.returncode == 10 and "signature does not verify" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "dl").exists()


def test_pull_refuses_an_unsigned_release_when_asked_to_verify(
    hub: HubServer,
    ready: Path,
    signed: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    _, public = signed
    assert zoo(hub, ready, "push", NAME, "--repo-id", "zoo-tiny/unsigned").returncode == 0
    res = zoo(hub, ready, "pull", "zoo-tiny/unsigned", "--local-dir", str(tmp_path / "dl"), "--verify-with", str(public))
    assert res.returncode == 10 and "has no zoo-release.sig" in res.stderr and not (tmp_path / "dl").exists()


def test_bad_signing_input_is_one_line(hub: HubServer, ready: Path, tmp_path: Path) -> None:
    res = zoo(hub, ready, "push", NAME, "--repo-id", REPO, "--sign-key", str(tmp_path / "missing.pem"))
    assert res.returncode == 2 and "signing key" in res.stderr and "does not exist" in res.stderr
    (tmp_path / "junk.pem").write_text("not a key")
    res = zoo(hub, ready, "push", NAME, "--repo-id", "zoo-tiny/junk-key", "--sign-key", str(tmp_path / "junk.pem"))
    assert res.returncode == 2 and "not an unencrypted PEM private key" in res.stderr and "Traceback" not in res.stderr
    res = zoo(hub, ready, "pull", REPO, "--local-dir", str(tmp_path / "dl"), "--verify-with", str(tmp_path / "nope.pem"))
    assert res.returncode == 2 and "public key" in res.stderr and not (tmp_path / "dl").exists()
