"""``zoo site`` in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver (no browser download at run time). ``.ci/run`` installs both and sets ZOO_REQUIRE_CHROMIUM=1,
so there this test fails rather than skips when they are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT
from zoo.card.common import fmt, quick

BUILT = ("tiny-llama3-rtn-4bit", "tiny-llama3-rtn-8bit-pc", "tiny-llama3-gptq-4bit")
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _browser():  # noqa: ANN202
    if not (CHROMIUM.exists() and DRIVER.exists()):
        if os.environ.get("ZOO_REQUIRE_CHROMIUM"):
            raise AssertionError("Chromium / chromedriver missing: apt-get install chromium chromium-driver")
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


@pytest.fixture(scope="module")
def site(built, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    from zoo.catalog import load
    from zoo.evaluation.run import evaluate

    for name in BUILT[:2]:
        built(name)
        evaluate(load(name, RECIPES), workdir, RECIPES, device="cpu", limit=4)
    built(BUILT[2])  # built, not evaluated (here): shown as such, with no number
    out = tmp_path_factory.mktemp("site") / "site"
    res = subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "site", "--workdir", str(workdir), "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def test_site_lists_every_variant_with_the_measured_numbers(site: Path, workdir: Path) -> None:
    from zoo.catalog import recipe_paths
    from zoo.recipe import load_recipe

    tiny = [load_recipe(p) for p in recipe_paths(RECIPES) if load_recipe(p).base_name == "tiny-llama3"]
    driver = _browser()
    try:
        driver.get((site / "index.html").as_uri())
        assert "tiny-llama3" in driver.find_element("id", "bases").text
        driver.find_element("link text", "tiny-llama3").click()
        rows = driver.find_elements("css selector", "#variants tbody tr")
        names = [r.get_attribute("data-name") for r in rows]
        assert sorted(names) == sorted(r.name for r in tiny)  # every variant, built or not
        by_name = {r.get_attribute("data-name"): r for r in rows}

        def cells_of(name: str) -> dict[str, str]:
            return dict(zip(header, [c.text for c in by_name[name].find_elements("tag name", "td")], strict=True))

        header = [th.text.strip(" \u2195\u2191\u2193") for th in driver.find_elements("css selector", "#variants thead th")]
        for name in BUILT[:2]:
            ev = json.loads((workdir / name / "eval.json").read_text())
            cells = cells_of(name)
            # a quick run's number is marked wherever it appears (the card's rule too)
            assert cells["status"] == "evaluated" and cells["ppl"] == quick(fmt(ev["metrics"]["ppl/pydoc"]), bool(ev["limit"]))
            assert cells["ppl recovery"] == f"{ev['recovery']['ppl/pydoc']:.1f}%"
        cells = cells_of(BUILT[2])
        if not (workdir / BUILT[2] / "eval.json").exists():
            assert cells["status"] == "built" and cells["ppl"] == "not evaluated"
        unbuilt = next(r.name for r in tiny if not (workdir / r.name / "build.json").exists())
        cells = cells_of(unbuilt)
        assert cells["status"] == "not built" and cells["size"] == "not built" and cells["ppl"] == "not evaluated"
        # sorting: click "bits" twice, the order follows the bits both ways
        before = [r.get_attribute("data-name") for r in driver.find_elements("css selector", "#variants tbody tr")]
        bits_header = driver.find_elements("css selector", "#variants thead th button")[header.index("bits")]
        bits_header.click()
        up = [r.get_attribute("data-name") for r in driver.find_elements("css selector", "#variants tbody tr")]
        bits = {r.name: r.weights.bits for r in tiny}
        assert [bits[n] for n in up] == sorted(bits[n] for n in up) and up != before
        bits_header.click()
        down = [r.get_attribute("data-name") for r in driver.find_elements("css selector", "#variants tbody tr")]
        assert [bits[n] for n in down] == sorted((bits[n] for n in down), reverse=True)
        # filtering: typing a method name leaves only its rows visible
        driver.find_element("id", "q").send_keys("gptq")
        shown = [
            r.get_attribute("data-name") for r in driver.find_elements("css selector", "#variants tbody tr") if r.is_displayed()
        ]
        assert shown and all("gptq" in n for n in shown)
        assert driver.find_element("css selector", "svg.plot")  # the family's chart, inline
        shot = Path(os.environ.get("ZOO_SITE_SCREENSHOT") or site.parent / "site.png")
        driver.find_element("id", "q").clear()
        driver.find_element("id", "q").send_keys(" ")
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()


def test_site_never_overwrites_a_folder_of_ones_own(tmp_path: Path, workdir: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "site", "--workdir", str(workdir), "--out", str(mine)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert res.returncode == 2 and "nothing was changed" in res.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".mine*"))  # no staging folder left beside it
    shutil.rmtree(mine)
