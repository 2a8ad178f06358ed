"""The CI and release workflows' supply-chain and token isolation (issue #28; docs/security.md).

Each check is a function of the workflow's text, so the same functions are run on mutated copies to
show they catch what they guard against. actionlint's own check is tests/test_publish.py's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
TAG_COMMENT = re.compile(r"^\s+#\s+v\d+(\.\d+)*\s*$")
WRITE_SECRETS = re.compile(r"secrets\s*(\.\s*(HF_TOKEN|ZOO_SIGNING_KEY)\b|\[\s*['\"](HF_TOKEN|ZOO_SIGNING_KEY)['\"])")
BASELINE_SECRET = re.compile(r"secrets\s*(\.\s*HF_BASELINE_TOKEN\b|\[\s*['\"]HF_BASELINE_TOKEN['\"])")
RUNS_MODEL_CODE = re.compile(r"\bzoo\s+(build|eval|release|rehearse|baseline)\b|bench/rehearse\.py")
PIP_INSTALL = re.compile(r"\bpip\s+install\b[^\n]*")


def text(name: str) -> str:
    return (WORKFLOWS / name).read_text()


def steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


# -- the checks ---------------------------------------------------------------------------------------


def check_pins(raw: str) -> None:
    """Every action by full commit SHA with its tag on the same line: a tag can be moved to other code."""
    wf = yaml.safe_load(raw)
    parsed = sorted(str(s["uses"]) for s in steps(wf) if "uses" in s)
    parsed += sorted(str(j["uses"]) for j in wf["jobs"].values() if "uses" in j)  # reusable workflows
    lines = [m for m in map(USES_LINE.match, raw.splitlines()) if m]
    assert parsed and sorted(m["ref"] for m in lines) == sorted(parsed), "a uses: not on a line of its own"
    for m in lines:
        assert PIN.match(m["ref"]), f"{m['ref']} is not pinned by a 40-hex commit"
        assert TAG_COMMENT.match(m["rest"]), f"{m['ref']} has no '# vX.Y.Z' comment naming its tag"


def check_read_only_checkout(raw: str, top_level: bool) -> None:
    """The token reads the repo and no more; no checkout leaves it in .git/config for later steps."""
    wf = yaml.safe_load(raw)
    if top_level:
        assert wf.get("permissions") == {"contents": "read"}, wf.get("permissions")
    checkouts = [s for s in steps(wf) if action(s) == "actions/checkout"]
    assert checkouts
    for s in checkouts:
        assert (s.get("with") or {}).get("persist-credentials") is False, s


def check_write_token_isolated(raw: str) -> None:
    """HF_TOKEN and the signing key only in jobs that run no model code from a clean, non-editable install."""
    wf = yaml.safe_load(raw)
    jobs: dict[str, dict[str, Any]] = wf["jobs"]
    writers = {name for name, job in jobs.items() if WRITE_SECRETS.search(json.dumps(job))}
    builders = {name for name, job in jobs.items() if RUNS_MODEL_CODE.search(runs(job))}
    assert writers and builders and not writers & builders, (writers, builders)
    for name in builders:
        assert jobs[name].get("permissions") == {"contents": "read"}, name
    for name in writers:
        job = jobs[name]
        assert isinstance(job["runs-on"], str) and job["runs-on"].startswith("ubuntu-"), (name, job["runs-on"])
        assert job.get("environment"), f"{name} publishes outside a protected environment"
        installs = PIP_INSTALL.findall(runs(job))
        assert installs, f"{name} installs no zoo"
        for line in installs:  # this checkout, light: at most the signing extra, never editable
            assert not re.search(r"(^|\s)(-e|--editable)\b", line), line
            extras = {e.strip() for m in re.findall(r"\[([^]]*)\]", line) for e in m.split(",")}
            assert extras <= {"sign"}, line
        for step in job["steps"]:
            if action(step) == "actions/setup-python":
                assert "cache" not in (step.get("with") or {}), f"{name} restores a pip cache others write"
    pushers = [name for name in writers if re.search(r"\bzoo\s+push\b", runs(jobs[name]))]
    assert pushers, "no job pushes"
    for name in pushers:
        check_receives_build(jobs, name, builders)


def check_receives_build(jobs: dict[str, dict[str, Any]], name: str, builders: set[str]) -> None:
    """The pushing job needs a build job and downloads exactly the artifact it uploads: records and checkpoint."""
    needs = jobs[name].get("needs", [])
    sources = ({needs} if isinstance(needs, str) else set(needs)) & builders
    assert sources, f"{name} needs no build job"
    got = {s["with"]["name"] for s in jobs[name]["steps"] if action(s) == "actions/download-artifact"}
    sent = {
        s["with"]["name"]: s["with"]["path"] for b in sources for s in jobs[b]["steps"] if action(s) == "actions/upload-artifact"
    }
    assert got and got <= set(sent), (got, set(sent))
    for artifact in got:
        paths = [p.strip() for p in sent[artifact].splitlines() if p.strip()]
        for part in ("build.json", "eval.json", "card/", "model/"):
            assert any(p.endswith(part) for p in paths), (artifact, part, paths)


def check_baseline_token(raw: str) -> None:
    """The baselines store's token (it may write that one dataset repo) only on a step that shares baselines
    from the workdir's cache, never in a job's env, never beside the release write token (#30)."""
    wf = yaml.safe_load(raw)
    holders = []
    for name, job in wf["jobs"].items():
        assert not BASELINE_SECRET.search(json.dumps({k: v for k, v in job.items() if k != "steps"})), name
        holders += [(name, step) for step in job.get("steps", []) if BASELINE_SECRET.search(json.dumps(step))]
    assert holders, "no step shares the baselines"
    for name, step in holders:
        commands = re.findall(r"\bzoo\s+[a-z-]+(?:\s+--[a-z-]+)*", step.get("run", ""))
        assert commands and all(c.startswith("zoo baseline --push") for c in commands), (name, commands)
        assert not WRITE_SECRETS.search(json.dumps(step)), name


# -- the workflows as they are ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_action_is_pinned_by_commit_with_its_tag(name: str) -> None:
    check_pins(text(name))


def test_ci_token_reads_only_and_leaves_no_credentials() -> None:
    check_read_only_checkout(text("ci.yml"), top_level=True)


def test_release_checkouts_leave_no_credentials() -> None:
    check_read_only_checkout(text("release.yml"), top_level=False)


def test_release_write_token_only_where_no_model_code_runs() -> None:
    check_write_token_isolated(text("release.yml"))


def test_release_baseline_token_only_where_baselines_are_shared() -> None:
    check_baseline_token(text("release.yml"))


# -- the checks catch what they guard against ---------------------------------------------------------


def _first(pattern: str, repl: str) -> Callable[[str], str]:
    return lambda raw: re.sub(pattern, repl, raw, count=1, flags=re.M)


def _pins(raw: str, _: bool) -> None:
    check_pins(raw)


def _isolated(raw: str, _: bool) -> None:
    check_write_token_isolated(raw)


def _baseline(raw: str, _: bool) -> None:
    check_baseline_token(raw)


PUBLISH_RUNNER = r"(  publish:\n(?:.*\n)*?    runs-on: )ubuntu-latest"
LIGHT_INSTALL = r"pip install \"\.\[sign\]\""
MEASURE_TOKEN = r"(Measure the 16-bit base.*\n        env:\n          HF_TOKEN: \$\{\{ secrets\.)HF_READ_TOKEN"
MUTATIONS: list[tuple[str, Callable[[str, bool], None], Callable[[str], str]]] = [
    ("ci.yml", _pins, _first(r"@[0-9a-f]{40} # (v\d+)[.\d]*", r"@\1")),  # back to a tag
    ("ci.yml", _pins, _first(r" # v[.\d]+$", "")),  # a SHA nobody can check against a tag
    ("release.yml", _pins, _first(r"@[0-9a-f]{40}", "@main")),
    ("ci.yml", check_read_only_checkout, _first(r"^permissions:\n  contents: read\n", "")),
    ("ci.yml", check_read_only_checkout, _first(r"persist-credentials: false", "persist-credentials: true")),
    ("release.yml", _isolated, _first(r"secrets.HF_READ_TOKEN", "secrets.HF_TOKEN")),  # rehearse gets the write token
    ("release.yml", _isolated, _first(LIGHT_INSTALL, 'pip install -e ".[sign]"')),
    ("release.yml", _isolated, _first(LIGHT_INSTALL, 'pip install ".[all]"')),
    ("release.yml", _isolated, _first(r"zoo push --sign-key", "zoo release --sign-key")),
    ("release.yml", _isolated, _first(r"model/\n", "\n")),  # the checkpoint not handed over
    ("release.yml", _isolated, _first(PUBLISH_RUNNER, r"\1${{ matrix.runner }}")),  # back on the GPU runner
    ("release.yml", _isolated, _first(r"secrets.HF_BASELINE_TOKEN", "secrets.HF_TOKEN")),  # the release token shares
    ("release.yml", _baseline, _first(MEASURE_TOKEN, r"\1HF_BASELINE_TOKEN")),  # the store's token where models load
    ("release.yml", _baseline, _first(r"zoo baseline --push", "zoo baseline")),  # it measures with the store's token
    (
        "release.yml",
        _baseline,
        _first(r"(  build:\n(?:.*\n)*?    env:\n)", r"\1      HF_TOKEN: ${{ secrets.HF_BASELINE_TOKEN }}\n"),
    ),
]


@pytest.mark.parametrize("name,check,mutate", MUTATIONS)
def test_checks_reject_a_weakened_workflow(name: str, check: Callable[[str, bool], None], mutate: Callable[[str], str]) -> None:
    raw = text(name)
    check(raw, True)  # the workflow as it is passes
    weakened = mutate(raw)
    assert weakened != raw, "the mutation no longer applies"
    with pytest.raises(AssertionError):
        check(weakened, True)
