"""A native method's release is its packed checkpoint (#32): recorded by the build, published by push, kept
packed by pull or unpacked to the 16-bit checkpoint the manifest's (signed) hash proves.

A tiny BiLLM build (and one of a copy of its recipe with ``hub: {weights: fake}``) is pushed and pulled as
users run zoo (``python -m zoo`` in a subprocess), with the real huggingface_hub client against
tests/hub_server.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, write
from tests.hostile import error_line
from tests.hub_server import HubServer

NAME = "tiny-llama3-billm-1.1bit"
FAKE = "tiny-llama3-billm-1.1bit-fake"
MANIFEST = "zoo-release.json"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(catalog, workdir): NAME and FAKE built once and carded (no evaluation)."""
    from zoo.card import render
    from zoo.catalog import load, recipe_paths
    from zoo.quantize import build
    from zoo.recipe import load_recipe

    root = tmp_path_factory.mktemp("recipes")
    shutil.copytree(RECIPES / "_base", root / "_base")
    text = (RECIPES / f"{NAME}.yaml").read_text()
    write(root, NAME, text)
    write(root, FAKE, text.replace(f"name: {NAME}", f"name: {FAKE}") + "hub: {org: zoo-tiny, weights: fake}\n")
    work = tmp_path_factory.mktemp("work")
    catalog = [load_recipe(p) for p in recipe_paths(root)]
    for name in (NAME, FAKE):
        build(load(name, root), work, root, device="cpu")
        render(load(name, root), catalog, work)
    return root, work


def zoo(hub: HubServer, release: tuple[Path, Path], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root, work = release
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(work / ".hf-home"),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_TOKEN=hub.state.token,
        ZOO_HUB_TIMEOUT="20",
        ZOO_STATE_DIR=str(cwd / ".state"),
        ZOO_WORKDIR=str(work),
    )
    return subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(root), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, (res.stdout, res.stderr[-3000:])
    return res


def head(hub: HubServer, repo: str) -> dict[str, bytes]:
    r = hub.state.repos[repo]
    return {p: e.data for p, e in r.commits[r.refs["main"]]["files"].items()}


def tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    out: dict[str, object] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def weight_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def test_build_json_lists_the_packed_files_and_guards_them(hub: HubServer, release: tuple[Path, Path], tmp_path: Path) -> None:
    from zoo.records import BuildRecord
    from zoo.workdir import Layout, sha256_file

    _, work = release
    record = BuildRecord.checked(Layout(work, NAME))
    packed = work / NAME / "packed"
    assert [f.path for f in record.packed_files] == sorted(p.name for p in packed.iterdir())
    assert all(
        f.size == (packed / f.path).stat().st_size and f.sha256 == sha256_file(packed / f.path) for f in record.packed_files
    )
    # total_bytes is what a release publishes: the packed form here, the 16-bit one under hub: {weights: fake}
    assert record.publishes_packed and record.total_bytes == record.packed_bytes < 0.6 * record.model_bytes
    fake = BuildRecord.checked(Layout(work, FAKE))
    assert fake.packed_files and not fake.publishes_packed and fake.total_bytes == fake.model_bytes
    # a record written before #32 (no packed_files) is still read, and publishes model/ as it did
    data = json.loads((work / NAME / "build.json").read_text())
    old = BuildRecord.parse({k: v for k, v in data.items() if k != "packed_files"})
    assert old is not None and not old.publishes_packed
    # an altered packed file is a changed build, as an altered model file is: exit 8, nothing pushed
    copy = tmp_path / "work"
    shutil.copytree(work / NAME, copy / NAME)
    target = copy / NAME / "packed" / "model.safetensors"
    data_bytes = bytearray(target.read_bytes())
    data_bytes[-1] ^= 0xFF
    target.write_bytes(bytes(data_bytes))
    res = zoo(hub, release, tmp_path, "push", NAME, "--workdir", str(copy), "--repo-id", "zoo-tiny/altered")
    assert "no longer matches build.json (packed/model.safetensors)" in error_line(res, 8)
    assert "zoo-tiny/altered" not in hub.state.repos
    target.write_bytes(bytes(data_bytes[:-1]))  # truncated: a rerun of the build no longer skips it
    altered = BuildRecord.read(Layout(copy, NAME))
    assert altered is not None and not altered.intact(Layout(copy, NAME))


def test_push_publishes_the_packed_form_and_a_repush_uploads_nothing(hub: HubServer, release: tuple[Path, Path]) -> None:
    _, work = release
    repo = "zoo-tiny/packed"
    ok(zoo(hub, release, work, "push", NAME, "--repo-id", repo))
    files = head(hub, repo)
    packed = work / NAME / "packed"
    for p in packed.iterdir():
        assert files[p.name] == p.read_bytes(), p.name
    assert "quantization.json" not in files  # the fake form's; the packed config carries the scheme
    assert (work / NAME / "model" / "model.safetensors").read_bytes() not in files.values()
    manifest = json.loads(files[MANIFEST])
    config = json.loads(files["config.json"])["quantization_config"]
    assert manifest["format"] == 3 and manifest["unpacked_sha256"] == config["unpacked_sha256"]
    listed = {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]}
    assert listed == {
        p: (len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items() if p not in (MANIFEST, ".gitattributes")
    }
    before = len(hub.state.repos[repo].commits)
    res = ok(zoo(hub, release, work, "push", NAME, "--repo-id", repo))
    assert "no commit made" in res.stdout and len(hub.state.repos[repo].commits) == before


def test_pull_keeps_it_packed_or_unpacks_to_the_16_bit_checkpoint(
    hub: HubServer, release: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    _, work = release
    repo = "zoo-tiny/pulled"
    ok(zoo(hub, release, work, "push", NAME, "--repo-id", repo))
    res = ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl"))
    dl = tmp_path / "dl"
    assert "packed checkpoint" in res.stdout and not (dl / "unpacked").exists()
    assert weight_bytes(dl) == weight_bytes(work / NAME / "packed") < 0.6 * weight_bytes(work / NAME / "model")
    res = ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack"))
    assert "unpacked: the 16-bit checkpoint in dl/unpacked" in res.stdout
    fake, unpacked = tensors(work / NAME / "model"), tensors(dl / "unpacked")
    assert unpacked.keys() == fake.keys()
    assert all(torch.equal(unpacked[k].view(torch.uint8), fake[k].view(torch.uint8)) for k in fake)  # type: ignore[attr-defined]
    assert "quantization_config" not in json.loads((dl / "unpacked" / "config.json").read_text())
    ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack"))  # its own unpacked/ is replaced
    ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl"))  # not asked to unpack: a stale unpacked/ goes
    assert not (dl / "unpacked").exists()
    # --unpack-to: a new or empty folder outside the pull's folder, nothing else
    ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack-to", "out"))
    assert tensors(tmp_path / "out").keys() == fake.keys() and not (dl / "unpacked").exists()
    for where in ("out", "dl/inside"):
        before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if ".state" not in p.parts)
        error_line(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack-to", where), 2)
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if ".state" not in p.parts) == before


def test_a_signed_packed_release_proves_the_unpacked_weights(hub: HubServer, release: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.test_signing import keypair

    _, work = release
    private, public = keypair(tmp_path, "publisher")
    repo = "zoo-tiny/signed-packed"
    ok(zoo(hub, release, work, "push", NAME, "--repo-id", repo, "--sign-key", str(private)))
    res = ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack", "--verify-with", str(public)))
    assert "its tensors' sha256 is the manifest's (signed)" in res.stdout


def _altered(files: dict[str, bytes]) -> dict[str, bytes]:
    """The release with one byte of the final norm's weight changed, and build.json and the manifest made to agree
    (as anyone may write them in a repo they control), but the manifest's unpacked_sha256 left as it was."""
    data = bytearray(files["model.safetensors"])
    (n,) = struct.unpack("<Q", data[:8])
    start = json.loads(data[8 : 8 + n])["model.norm.weight"]["data_offsets"][0]
    data[8 + n + start] ^= 0x01
    out = {**files, "model.safetensors": bytes(data)}
    build = json.loads(out["build.json"])
    for f in build["packed_files"]:
        if f["path"] == "model.safetensors":
            f["sha256"] = hashlib.sha256(out["model.safetensors"]).hexdigest()
    out["build.json"] = json.dumps(build).encode()
    manifest = json.loads(out[MANIFEST])
    for f in manifest["files"]:
        f["size"], f["sha256"] = len(out[f["path"]]), hashlib.sha256(out[f["path"]]).hexdigest()
    out[MANIFEST] = json.dumps(manifest).encode()
    return out


def test_altered_packed_weights_are_refused(hub: HubServer, release: tuple[Path, Path], tmp_path: Path) -> None:
    _, work = release
    repo = "zoo-tiny/altered-packed"
    ok(zoo(hub, release, work, "push", NAME, "--repo-id", repo))
    original = head(hub, repo)
    hub.state.corrupt(repo, "model.safetensors")  # changed on the server: its sha256 differs from the manifest's
    res = zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "a", "--unpack")
    assert "corrupt: model.safetensors" in error_line(res, 10) and not (tmp_path / "a").exists()
    # a consistent forgery (unsigned manifest rewritten): the packed files verify, their decoding does not
    hub.state.craft(repo, _altered(original), tag="release-0000000000a1")
    ok(zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "b"))
    for args in (("--local-dir", "c", "--unpack"), ("--local-dir", "d", "--unpack-to", "e")):
        res = zoo(hub, release, tmp_path, "pull", repo, *args)
        assert f"do not decode to the unpacked_sha256 of {MANIFEST}" in error_line(res, 10)
        assert not any((tmp_path / x).exists() for x in ("c", "d", "e"))
    # a manifest whose unpacked hash is not the one the packed config records: refused even kept packed
    forged = dict(original)
    manifest = json.loads(forged[MANIFEST])
    manifest["unpacked_sha256"] = "0" * 64
    forged[MANIFEST] = json.dumps(manifest).encode()
    hub.state.craft(repo, forged, tag="release-0000000000a2")
    res = zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "f")
    assert "config.json does not record the unpacked_sha256" in error_line(res, 10) and not (tmp_path / "f").exists()


def test_the_fake_option_publishes_the_16_bit_form(hub: HubServer, release: tuple[Path, Path], tmp_path: Path) -> None:
    _, work = release
    repo = "zoo-tiny/fake"
    ok(zoo(hub, release, work, "push", FAKE, "--repo-id", repo))
    files = head(hub, repo)
    for p in (work / FAKE / "model").iterdir():
        assert files[p.name] == p.read_bytes(), p.name
    manifest = json.loads(files[MANIFEST])
    assert manifest["format"] == 2 and "unpacked_sha256" not in manifest
    assert "quantization_config" not in json.loads(files["config.json"])
    res = zoo(hub, release, tmp_path, "pull", repo, "--local-dir", "dl", "--unpack")
    assert "is not a packed release" in error_line(res, 2) and not (tmp_path / "dl").exists()


def test_the_weights_option_is_validated(catalog: Path) -> None:
    from zoo.catalog import validate

    text = (RECIPES / f"{NAME}.yaml").read_text().replace(f"name: {NAME}", "name: x") + "hub: {weights: fkae}\n"
    problems = [str(p) for p in validate([write(catalog, "x", text)])]
    assert any("hub.weights: unknown weights form 'fkae'; did you mean 'fake'?" in p for p in problems), problems


def test_a_manifest_of_a_newer_format_asks_for_a_newer_zoo() -> None:
    from zoo.errors import VerifyError
    from zoo.publish.manifest import parse

    build = {"path": "build.json", "size": 2, "sha256": "0" * 64}
    with pytest.raises(VerifyError, match="written by a newer zoo"):
        parse(json.dumps({"format": 4, "files": [build]}).encode(), "x")
    doc = {"format": 3, "name": "x", "repo_id": "a/x", "recipe_sha256": "0" * 64, "built": "2024-01-01T00:00:00+00:00",
           "evaluated": None, "files": [build]}  # fmt: skip
    with pytest.raises(VerifyError, match="no valid unpacked_sha256"):
        parse(json.dumps(doc).encode(), "x")
    assert parse(json.dumps({**doc, "unpacked_sha256": "a" * 64}).encode(), "x").unpacked_sha256 == "a" * 64


def test_push_says_when_a_native_build_predates_the_packed_form(
    release: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from zoo.publish.push import warn_unpacked
    from zoo.records import BuildRecord
    from zoo.workdir import Layout

    _, work = release
    records = {}
    for name in (NAME, FAKE):
        data = json.loads((work / name / "build.json").read_text())
        records[name] = (BuildRecord.parse(data), BuildRecord.parse({k: v for k, v in data.items() if k != "packed_files"}))
    with caplog.at_level(logging.WARNING, logger="zoo.publish.push"):
        assert warn_unpacked(Layout(work, NAME), records[NAME][1])  # built before #32: publishes the fake form
        assert not warn_unpacked(Layout(work, NAME), records[NAME][0])  # has its packed form
        assert not warn_unpacked(Layout(work, FAKE), records[FAKE][1])  # asks for the fake form: nothing to say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "publishes the 16-bit fake form" in lines[0] and lines[0].endswith(f"fix: zoo build {NAME} --force")
