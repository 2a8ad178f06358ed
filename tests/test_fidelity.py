"""Honesty about faithfulness: a method that is not its authors' algorithm says so wherever it is named."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.conftest import RECIPES
from zoo.cli import cli
from zoo.fidelity import FIDELITY
from zoo.methods import METHODS


def test_every_zoo_native_low_bit_method_states_its_distance_from_the_authors() -> None:
    native = {n for n in METHODS.names() if "fake" in METHODS.get(n).formats}
    assert native and native <= set(FIDELITY)
    assert all(FIDELITY[n] for n in native)
    assert not METHODS.get("gptq").fidelity  # the reference implementation says nothing extra


def test_show_prints_it_and_stays_a_recipe() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["--recipes", str(RECIPES), "show", "llama3-8b-billm-1.1bit"])
    assert shown.exit_code == 0 and "# fidelity: zoo's variant of BiLLM, not the authors' algorithm" in shown.stdout
    as_json = runner.invoke(cli, ["--recipes", str(RECIPES), "show", "llama3-8b-billm-1.1bit", "--json"])
    assert yaml.safe_load(shown.stdout) == json.loads(as_json.stdout)  # the note is a comment
