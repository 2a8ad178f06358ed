"""The Hub store of 16-bit baselines (#30) with the real huggingface_hub client against the test Hub: a base
measured and shared in one workdir is taken, not measured, by an eval in another; a store file that is not
exactly the base and suite it is filed under is refused with a warning and the base measured; offline
nothing changes."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PUBLISHED, RECIPES
from tests.hub_server import HubServer
from zoo.catalog import load
from zoo.errors import TokenError, UsageError
from zoo.evaluation import run as evaluation
from zoo.publish import baselines as store
from zoo.records import BaselineRecord, EvalRecord
from zoo.workdir import Layout

STORE = "zoo-tiny/zoo-baselines"  # the tiny recipes' Hub org + /zoo-baselines
LIMIT = 2
TOOK = "16-bit baseline from the Hub store"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    yield server
    server.stop()


@pytest.fixture
def online(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """This process talks to the test Hub with a write token, as `zoo` would with HF_ENDPOINT and HF_TOKEN."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_TOKEN", hub.state.token)
    monkeypatch.delenv(store.ENV_REPO, raising=False)
    hub.state.repos.pop(f"datasets/{STORE}", None)  # each test starts with no store
    return hub


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders ``measure`` runs on, in order (the base's is the built-in's folder)."""
    seen: list[Path] = []
    real = evaluation.measure

    def counting(model_dir: Path, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(model_dir))
        return real(model_dir, *args, **kwargs)

    monkeypatch.setattr(evaluation, "measure", counting)
    return seen


def _share(workdir: Path) -> BaselineRecord:
    recipe = load(PUBLISHED, RECIPES)
    where = evaluation.measure_baselines([recipe], workdir, RECIPES, device="cpu", limit=LIMIT, share=True)
    record = BaselineRecord.read_from(where[PUBLISHED])
    assert record is not None
    return record


def _location() -> store.Location:
    recipe = load(PUBLISHED, RECIPES)
    loc = store.location(recipe, evaluation.suite(recipe, LIMIT, 1), RECIPES)
    assert loc is not None
    return loc


def _fresh_variant(built: Any, workdir: Path, tmp_path: Path) -> Path:
    """A workdir holding only the built variant (no baselines, no eval): another machine after `zoo build`."""
    built(PUBLISHED)
    fresh = tmp_path / "b"
    skip = shutil.ignore_patterns(".zoo.lock", "eval.json", "eval-samples*", ".eval-samples*", "bench.json", "card")
    shutil.copytree(workdir / PUBLISHED, fresh / PUBLISHED, ignore=skip)
    return fresh


def _base_runs(seen: list[Path]) -> int:
    from zoo.tiny.bases import builtin_path

    return sum(p == builtin_path("tiny-llama3") for p in seen)


def test_a_shared_baseline_is_taken_by_a_fresh_workdir_not_measured(
    online: HubServer, built: Any, workdir: Path, tmp_path: Path, measured: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    a = _share(tmp_path / "a")
    loc = _location()
    assert loc.repo_id == STORE and loc.path.startswith("zoo-builtin/tiny-llama3/") and _base_runs(measured) == 1
    files = online.state.repos[f"datasets/{STORE}"]
    assert loc.path in files.commits[files.refs["main"]]["files"]

    b = _fresh_variant(built, workdir, tmp_path)
    measured.clear()
    with caplog.at_level(logging.INFO):
        evaluation.evaluate(load(PUBLISHED, RECIPES), b, RECIPES, device="cpu", limit=LIMIT, allow_regression=True)
    assert _base_runs(measured) == 0 and len(measured) == 1  # the variant only
    assert any(TOOK in r.getMessage() for r in caplog.records)
    record = EvalRecord.read(Layout(b, PUBLISHED))
    assert record is not None and record.baseline.metrics == a.metrics and record.baseline.base == a.base
    assert a.source == "measured" and record.baseline.source == f"hub:{STORE}"  # eval.json says where it came from
    kept = BaselineRecord.read_from(evaluation._baseline_path(load(PUBLISHED, RECIPES), b, _options()))
    assert kept == a.model_copy(update={"source": f"hub:{STORE}"})  # kept locally, with its origin


def _options() -> Any:
    from zoo.pipeline.options import RunOptions

    return RunOptions(recipes=RECIPES, device="cpu", limit=LIMIT)


def _tamper(hub: HubServer, loc: store.Location, data: bytes) -> None:
    hub.state.craft(f"datasets/{loc.repo_id}", {loc.path: data})


def _shared(loc: store.Location, good: BaselineRecord, **changes: Any) -> bytes:
    recipe = load(PUBLISHED, RECIPES)
    doc = {
        "schema_version": 1, "base_repo": loc.base_repo, "base_commit": loc.base_commit, "suite_sha256": loc.suite_sha256,
        "suite": evaluation.suite(recipe, LIMIT, 1), "baseline": good.model_dump(mode="json"),
    }  # fmt: skip
    doc.update(changes)
    return json.dumps(doc).encode()


def _good(tmp_path: Path) -> BaselineRecord:
    """A real baseline, measured offline-style in a scratch workdir (not shared)."""
    recipe = load(PUBLISHED, RECIPES)
    where = evaluation.measure_baselines([recipe], tmp_path / "scratch", RECIPES, device="cpu", limit=LIMIT)
    record = BaselineRecord.read_from(where[PUBLISHED])
    assert record is not None
    return record


def test_tampered_store_files_are_refused_with_a_warning(
    online: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc, good = _location(), _good(tmp_path)
    _tamper(online, loc, _shared(loc, good))
    assert store.fetch_baseline(loc) == good  # the honest file is taken, so each refusal below is the tampering's
    other_suite = {**evaluation.suite(load(PUBLISHED, RECIPES), LIMIT, 1), "limit": 3}
    other_base = good.model_copy(update={"base": {**good.base, "weights_sha256": "0" * 64}}).model_dump(mode="json")
    hostile = {
        "suite hash": _shared(loc, good, suite_sha256="f" * 64),
        "suite": _shared(loc, good, suite=other_suite),
        "commit": _shared(loc, good, base_commit="0" * 64),
        "record's base": _shared(loc, good, baseline=other_base),
        "malformed": b'{"schema_version": 1, "base_repo": ',
        "not finite": _shared(loc, good, baseline={**good.model_dump(mode="json"), "metrics": {"ppl/pydoc": float("nan")}}),
        "unknown field": _shared(loc, good, extra="x"),
        "oversized": _shared(loc, good) + b" " * (store.MAX_BYTES + 1),
    }
    for what, data in hostile.items():
        _tamper(online, loc, data)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="zoo.publish.baselines"):
            assert store.fetch_baseline(loc) is None, what
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, (what, warnings)
        assert warnings[0].startswith("ignoring the shared baseline") and warnings[0].endswith("measuring the base here"), what
        assert "\n" not in warnings[0]


def test_a_tampered_store_file_is_measured_again_and_replaced_when_sharing(
    online: HubServer, tmp_path: Path, measured: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    loc, good = _location(), _good(tmp_path)
    forged = good.model_copy(update={"metrics": {k: 1.0 for k in good.metrics}})
    _tamper(online, loc, _shared(loc, forged, base_commit="1" * 64))  # forged numbers, filed under another commit
    measured.clear()
    with caplog.at_level(logging.WARNING, logger="zoo.publish.baselines"):
        again = _share(tmp_path / "c")
    assert _base_runs(measured) == 1 and again.metrics == good.metrics
    assert any("ignoring the shared baseline" in r.getMessage() for r in caplog.records)
    assert store.fetch_baseline(loc) == again  # the store now holds the honest one


def test_offline_the_store_is_never_asked(
    hub: HubServer, tmp_path: Path, measured: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # reachable, but HF_HUB_OFFLINE=1 (conftest) forbids it
    monkeypatch.setenv("HF_TOKEN", hub.state.token)
    before = len(hub.state.requests)
    _good(tmp_path)
    assert _base_runs(measured) == 1 and len(hub.state.requests) == before
    recipe = load(PUBLISHED, RECIPES)
    assert store.location(recipe, evaluation.suite(recipe, LIMIT, 1), RECIPES) is None
    assert store.unshareable(recipe) == "HF_HUB_OFFLINE is set"
    with pytest.raises(UsageError, match="cannot be shared: HF_HUB_OFFLINE is set; fix: unset HF_HUB_OFFLINE"):
        _share(tmp_path / "offline")  # asked to share while offline: said before measuring
    assert _base_runs(measured) == 1 and len(hub.state.requests) == before


def test_sharing_without_a_token_fails_before_measuring(
    online: HubServer, tmp_path: Path, measured: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(TokenError, match="fix: set HF_TOKEN"):
        _share(tmp_path / "d")
    assert measured == []


def test_a_read_token_cannot_share_and_says_so(online: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = f"hf_{secrets.token_hex(16)}"
    online.state.read_tokens.add(reader)
    monkeypatch.setenv("HF_TOKEN", reader)
    with pytest.raises(TokenError, match=r"may not write the baseline store zoo-tiny/zoo-baselines \(HTTP 403\)"):
        _share(tmp_path / "e")
    assert BaselineRecord.read_from(evaluation._baseline_path(load(PUBLISHED, RECIPES), tmp_path / "e", _options()))  # kept


def test_a_release_shares_what_it_can_and_goes_on(online: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Not strict (zoo release): no store, a quiet skip (it makes no repo); a token that may not write, a warning;
    the baseline kept either way and shared by the next run with a write token, without measuring again."""
    from zoo.pipeline.options import RunOptions

    recipe, options = load(PUBLISHED, RECIPES), RunOptions(recipes=RECIPES, device="cpu", limit=LIMIT, share_baseline=True)
    layout = Layout(tmp_path / "f", PUBLISHED)
    with caplog.at_level(logging.WARNING):
        record = evaluation.baseline(recipe, layout, options)
    assert f"datasets/{STORE}" not in online.state.repos and not [r for r in caplog.records if r.name.startswith("zoo")]
    online.state.craft(f"datasets/{STORE}", {"README.md": b"baselines\n"})
    reader = f"hf_{secrets.token_hex(16)}"
    online.state.read_tokens.add(reader)
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
        mp.setenv("HF_TOKEN", reader)
        assert evaluation.baseline(recipe, layout, options) == record
    assert [r.getMessage() for r in caplog.records if r.name.startswith("zoo")] == [
        f"{PUBLISHED}: the 16-bit baseline is kept here but not shared: the Hugging Face token may not write the baseline "
        "store zoo-tiny/zoo-baselines (HTTP 403); fix: use a token with write access to it, or set ZOO_BASELINE_REPO to "
        "a dataset repo it may write"
    ]
    assert store.fetch_baseline(_location()) is None
    assert evaluation.baseline(recipe, layout, options) == record  # the write token: shared from the cache
    assert store.fetch_baseline(_location()) == record


@pytest.mark.parametrize("value", ["../etc", "a/b/c", "owner/na..me", "-x/y"])
def test_the_store_repo_override_is_checked(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store.ENV_REPO, value)
    with pytest.raises(UsageError, match=f"{store.ENV_REPO}=.*fix:"):
        store.store_repo(load(PUBLISHED, RECIPES))


def test_the_store_repo_is_the_recipes_org_or_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load(PUBLISHED, RECIPES)
    assert store.store_repo(recipe) == STORE
    monkeypatch.setenv(store.ENV_REPO, "my-org/shared-baselines")
    assert store.store_repo(recipe) == "my-org/shared-baselines"


def test_bases_no_other_machine_can_check_are_never_shared(online: HubServer) -> None:
    recipe = load(PUBLISHED, RECIPES)
    local = recipe.model_copy(update={"base": recipe.base.model_copy(update={"builtin": None, "path": "bases/mine"})})
    branch = recipe.model_copy(
        update={
            "base": recipe.base.model_copy(update={"builtin": None, "repo_id": "meta-llama/Meta-Llama-3-8B", "revision": "main"})
        }
    )
    pinned = branch.model_copy(update={"base": branch.base.model_copy(update={"revision": "a" * 40})})
    assert "local folder" in str(store.unshareable(local)) and "not a commit" in str(store.unshareable(branch))
    spec = evaluation.suite(recipe, LIMIT, 1)
    assert store.location(local, spec, RECIPES) is None and store.location(branch, spec, RECIPES) is None
    loc = store.location(pinned, spec, RECIPES)
    assert loc is not None and loc.path == f"meta-llama/Meta-Llama-3-8B/{'a' * 40}/{store.suite_sha256(spec)}.json"
