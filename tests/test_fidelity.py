"""Honesty about faithfulness: a method that is not its authors' algorithm says so wherever it is named."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.conftest import RECIPES
from zoo.cli import cli
from zoo.fidelity import FIDELITY, fidelity, variants
from zoo.methods import METHODS


def test_every_zoo_native_low_bit_method_states_its_distance_from_the_authors() -> None:
    native = {n for n in METHODS.names() if "fake" in METHODS.get(n).formats}
    assert native and native <= set(FIDELITY)
    assert all(FIDELITY[n] for n in native)
    for name in native:  # a method with variants: the default is the authors' algorithm, every variant is a param
        if variants(name):
            assert variants(name)[0] == "authors" and fidelity(name).startswith("the authors' algorithm")
            field = METHODS.get(name).params.model_fields["variant"]
            assert field.default == "authors" and set(field.annotation.__args__) == set(variants(name))
    assert not METHODS.get("gptq").fidelity  # the reference implementation says nothing extra


def test_show_prints_it_and_stays_a_recipe(catalog) -> None:  # noqa: ANN001
    runner = CliRunner()
    shown = runner.invoke(cli, ["--recipes", str(RECIPES), "show", "llama3-8b-billm-1.1bit"])
    assert shown.exit_code == 0 and "# fidelity: the authors' algorithm (Aaronhuang-778/BiLLM" in shown.stdout
    text = (RECIPES / "llama3-8b-billm-1.1bit.yaml").read_text().replace("name: llama3-8b-billm-1.1bit", "name: mine")
    (catalog / "mine.yaml").write_text(text + "params: {variant: zoo-obs}\n")
    variant = runner.invoke(cli, ["--recipes", str(catalog), "show", "mine"])
    assert variant.exit_code == 0 and "# fidelity: zoo's variant of BiLLM (params.variant: zoo-obs)" in variant.stdout
    as_json = runner.invoke(cli, ["--recipes", str(RECIPES), "show", "llama3-8b-billm-1.1bit", "--json"])
    assert yaml.safe_load(shown.stdout) == json.loads(as_json.stdout)  # the note is a comment
