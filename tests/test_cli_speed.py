"""Issue #19, a snappy CLI: list/show/validate answer from a snapshot of the validated catalog in the
zoo cache, without importing pydantic, the methods or any backend, and exactly as without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from tests.conftest import RECIPES, ROOT, write

# Runs the CLI, then writes which of these modules the process imported to $ZOO_TEST_MODULES.
WRAPPER = """\
import atexit, json, os, sys
WATCH = ("pydantic", "torch", "transformers", "zoo.methods", "zoo.recipe")
atexit.register(lambda: open(os.environ["ZOO_TEST_MODULES"], "w").write(json.dumps([m for m in WATCH if m in sys.modules])))
from zoo.cli import main
sys.argv[0] = "zoo"
main()
"""


class Run:
    def __init__(self, res: subprocess.CompletedProcess[str], modules: list[str]) -> None:
        self.code, self.out, self.err, self.modules = res.returncode, res.stdout, res.stderr, modules


def zoo(cache: Path, *args: str, recipes: Path = RECIPES, report: Path | None = None) -> Run:
    report = report or cache.parent / "modules.json"
    # an empty workdir: `zoo show` reads the default one (./work) for a build's facts, which a checkout may hold
    env = {**os.environ, "ZOO_CACHE": str(cache), "ZOO_TEST_MODULES": str(report), "ZOO_WORKDIR": str(cache.parent / "work")}
    res = subprocess.run([sys.executable, "-c", WRAPPER, "--recipes", str(recipes), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return Run(res, json.loads(report.read_text()))


def cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "catalog").glob("*.json"))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "recipes"
    shutil.copytree(RECIPES, root)
    return root


def test_second_run_answers_from_the_cache_without_pydantic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, second = zoo(cache, "list", "--json"), zoo(cache, "list", "--json")
    assert first.code == second.code == 0, first.err + second.err
    assert first.out == second.out and first.err == second.err == ""
    assert len(json.loads(second.out)) == len(list(RECIPES.glob("[!_]*.yaml")))
    assert "pydantic" in first.modules  # the miss validates: the check below can tell
    assert second.modules == [], second.modules
    for args in (["show", "llama3-8b-awq-4bit", "--json"], ["show", "tiny-llama3-rtn-4bit"], ["validate"],
                 ["validate", "--json", "--strict"], ["list", "--family", "llama3-70b", "--bits", "3"]):  # fmt: skip
        hit = zoo(cache, *args)
        assert hit.code == 0 and hit.err == "" and hit.modules == [], (args, hit.err, hit.modules)
    assert zoo(cache, "validate").out == f"{len(list(RECIPES.rglob('*.yaml')))} file(s) valid\n"


def test_cached_answers_are_the_usual_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recipe's `show` (JSON and YAML) and the listing, read back from the cache file, equal what
    the code computes without it."""
    import zoo.catalog as catalog
    import zoo.snapshot as snapshot

    cache = tmp_path / "cache"
    assert zoo(cache, "list").code == 0
    monkeypatch.setenv("ZOO_CACHE", str(cache))
    monkeypatch.setattr(snapshot, "_build", lambda root: pytest.fail("a miss"))
    snap = snapshot.snapshot(RECIPES)
    assert snap is not None
    assert [json.dumps(r) for r in snap["entries"]] == [json.dumps(asdict(e)) for e in catalog.entries(RECIPES)]
    assert list(snap["shown"]) == [p.stem for p in catalog.recipe_paths(RECIPES)]
    for name, data in snap["shown"].items():
        usual = catalog.load(name, RECIPES).model_dump(mode="json")
        assert json.dumps(data, indent=2) == json.dumps(usual, indent=2), name
        assert yaml.safe_dump(data, sort_keys=False) == yaml.safe_dump(usual, sort_keys=False), name
    assert snapshot.listed(RECIPES, method="gptq", bits=4) == catalog.entries(RECIPES, method="gptq", bits=4)
    assert snapshot.catalog_problems(RECIPES, strict=True) == catalog.validate(
        [*catalog.base_paths(RECIPES), *catalog.recipe_paths(RECIPES)], strict=True
    )


def test_unknown_names_keep_their_did_you_mean_on_a_hit(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert zoo(cache, "list").code == 0
    method = zoo(cache, "list", "--method", "gpqt")
    assert (method.code, method.out, method.err) == (2, "", "error: unknown method 'gpqt'; did you mean 'gptq'?\n")
    recipe = zoo(cache, "show", "llama3-8b-gptq-4bti")
    assert recipe.code == 2 and recipe.err == "error: unknown recipe 'llama3-8b-gptq-4bti'; did you mean 'llama3-8b-gptq-4bit'?\n"
    path = zoo(cache, "show", "../recipes/llama3-8b-gptq-4bit")
    assert path.code == 2 and "is not a recipe name" in path.err


def test_editing_a_base_shows_at_once(tmp_path: Path, copy: Path) -> None:
    cache = tmp_path / "cache"
    before = zoo(cache, "show", "tiny-llama3-rtn-4bit", "--json", recipes=copy)
    assert before.code == 0 and json.loads(before.out)["calibration"]["samples"] == 32
    base = copy / "_base" / "tiny-llama3.yaml"
    base.write_text(base.read_text().replace("samples: 32", "samples: 64"))  # same size, likely the same mtime tick
    after = zoo(cache, "show", "tiny-llama3-rtn-4bit", "--json", recipes=copy)
    assert after.code == 0 and json.loads(after.out)["calibration"]["samples"] == 64
    assert zoo(cache, "show", "tiny-llama3-rtn-4bit", "--json", recipes=copy).out == after.out


def test_a_new_recipe_is_listed_at_once(tmp_path: Path, copy: Path) -> None:
    cache = tmp_path / "cache"
    assert "tiny-x" not in zoo(cache, "list", recipes=copy).out
    write(copy, "tiny-x", "name: tiny-x\nextends: _base/tiny-llama3\nmethod: gptq\nweights: {bits: 4}\n")
    assert "tiny-x" in zoo(cache, "list", recipes=copy).out


def test_a_broken_recipe_reports_as_before(tmp_path: Path, copy: Path) -> None:
    cache = tmp_path / "cache"
    assert zoo(cache, "validate", recipes=copy).code == 0
    recipe = copy / "tiny-llama3-rtn-4bit.yaml"
    recipe.write_text(recipe.read_text().replace("method: rtn", "method: rtnn"))
    for args in (["list"], ["validate"], ["validate", "--json"], ["show", "tiny-llama3-rtn-4bit"]):
        first, again = zoo(cache, *args, recipes=copy), zoo(cache, *args, recipes=copy)
        assert first.code == again.code == 2, (args, first.err)
        assert (first.out, first.err) == (again.out, again.err)
        assert "unknown method 'rtnn'" in first.out + first.err
    good = zoo(cache, "show", "tiny-llama3-rtn-8bit-pc", recipes=copy)
    assert good.code == 0 and "name: tiny-llama3-rtn-8bit-pc" in good.out


def test_a_removed_local_base_is_reported(tmp_path: Path, copy: Path) -> None:
    cache = tmp_path / "cache"
    (tmp_path / "model").mkdir()
    write(copy, "llama3-8b-local-4bit", "name: llama3-8b-local-4bit\nextends: _base/llama3\nmethod: rtn\n"
          "base: {path: ../model, parameters: 8, license: llama3}\nweights: {bits: 4}\n")  # fmt: skip
    ok = zoo(cache, "validate", recipes=copy)
    assert ok.code == 0, ok.err
    assert zoo(cache, "validate", recipes=copy).modules == []  # cached
    (tmp_path / "model").rmdir()
    gone = zoo(cache, "validate", recipes=copy)
    assert gone.code == 2 and "base.path: local base '../model' does not exist" in gone.err


def test_a_corrupt_cache_file_is_a_miss(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = zoo(cache, "list", "--json")
    (file,) = cache_files(cache)
    for junk in (b"\x00{not json", b"[]", json.dumps({**json.loads(file.read_text()), "entries": [{}]}).encode()):
        file.write_bytes(junk)
        again = zoo(cache, "list", "--json")
        assert (again.code, again.out, again.err) == (0, good.out, "")
        assert json.loads(file.read_text())["entries"] == json.loads(good.out)  # rewritten whole


def test_an_unwritable_cache_still_works(tmp_path: Path) -> None:
    good = zoo(tmp_path / "cache", "list")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for _ in range(2):
        res = zoo(blocker / "cache", "list", report=tmp_path / "modules.json")
        assert (res.code, res.out, res.err) == (0, good.out, "")
    assert blocker.read_text() == "not a folder"


def test_a_code_change_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zoo.snapshot as snapshot

    package = tmp_path / "zoo"
    package.mkdir()
    (package / "m.py").write_text("X = 1\n")
    monkeypatch.setattr(snapshot, "_PACKAGE", package)
    key = snapshot._key(RECIPES)
    os.utime(package / "m.py", ns=(1, 1))
    assert snapshot._key(RECIPES) != key
