"""A secret in the endpoint never leaves the process (#28): ``HF_ENDPOINT=http://user:token@host``, as some
mirrors and proxies are reached, appears in no output, record, card or site page that zoo writes.

One release is pushed through such an endpoint with the real client against the test Hub; then a
sibling's card (which links to the pushed repo), the site, a Collections sync and a failing push are
run, and every line they printed and every file under the workdir and the site is searched for the
planted secret.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import RECIPES
from tests.hostile import NAME, release, work, zoo  # noqa: F401  (fixtures)
from tests.hub_server import HubServer
from tests.test_card import synthetic
from zoo.catalog import load

SECRET = "s3cr3t-Pl4nted-in-the-endpoint"


def with_userinfo(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://zoo-mirror-user:{SECRET}@{rest}"


def test_userinfo_in_hf_endpoint_reaches_no_output_record_card_or_page(hub: HubServer, work: Path) -> None:  # noqa: F811
    hub.state.basic.add(f"zoo-mirror-user:{SECRET}")
    endpoint = {"HF_ENDPOINT": with_userinfo(hub.url)}
    outputs = []

    def run(*args: str, **env: str) -> int:
        res = zoo(hub, work.parent, *args, env={**endpoint, **env})
        outputs.append(res.stdout + res.stderr)
        return res.returncode

    assert run("push", NAME, "--repo-id", "zoo-tiny/leak-check", "--workdir", str(work)) == 0, outputs[-1]
    assert (work / NAME / "push.json").exists()
    sibling = load("tiny-llama3-rtn-3bit", RECIPES)
    synthetic(sibling, work)
    assert run("card", sibling.name, "--workdir", str(work)) == 0, outputs[-1]
    card = (work / sibling.name / "card" / "README.md").read_text()
    assert f"]({hub.url}/zoo-tiny/leak-check)" in card  # the sibling is linked, without the userinfo
    assert run("site", "--workdir", str(work), "--out", str(work / "_site")) == 0, outputs[-1]
    assert run("collection", "sync", "--workdir", str(work)) == 0, outputs[-1]
    assert run("collection", "sync", "--workdir", str(work), "--json") == 0, outputs[-1]
    assert run("push", NAME, "--workdir", str(work), "--dry-run", "--json") == 0, outputs[-1]
    with socket.socket() as s:  # a mirror that is down: the error line names the endpoint
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert run("push", NAME, "--workdir", str(work), HF_ENDPOINT=with_userinfo(dead)) == 5
    assert "127.0.0.1" in outputs[-1]
    leaked = [i for i, text in enumerate(outputs) if SECRET in text]
    assert not leaked, [outputs[i][-1500:] for i in leaked]
    files = [p for p in work.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "push.json" for p in files) and any(p.suffix == ".html" for p in files)
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
