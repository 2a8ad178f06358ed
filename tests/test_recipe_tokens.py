"""Issue #28: a token typed into a recipe is refused by `zoo validate` and by every stage (exit 2, the field
named, the token never echoed), each file's strings are checked where they are written (a token in a
`_base` parent is reported once, against the parent), and hashes, URLs, names and prose are not tokens."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from tests.conftest import RECIPES, write
from tests.test_bad_input import GOOD, run_main
from tests.test_local_hostile import one_error
from zoo.catalog import recipe_paths
from zoo.recipe import load_recipe


def _random(n: int, seed: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


# Built at run time, so this file holds no string a secret scanner takes for a real token.
TOKENS = {
    "hugging face": "hf" + "_" + _random(34, 1),
    "openai": "sk" + "-" + _random(48, 2),
    "openai project": "sk" + "-proj-" + _random(64, 3),
    "github classic": "gh" + "p_" + _random(36, 4),
    "github fine-grained": "github" + "_pat_" + _random(22, 5) + "_" + _random(59, 6),
    "aws": "AK" + "IA" + _random(16, 7, string.ascii_uppercase + string.digits),
    "random": _random(40, 8),
    "url password": "https://user:" + _random(24, 9) + "@example.com/models",
}


@pytest.mark.parametrize("kind", list(TOKENS))
@pytest.mark.parametrize("field", ["description", "card.warnings.1"])
def test_validate_reports_a_token_with_its_field_and_every_other_problem(
    kind: str, field: str, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = TOKENS[kind]
    where = (
        f"description: 'Our 4-bit build; token {token}'\n"
        if field == "description"
        else f"card: {{warnings: [fine, 'use {token} to download']}}\n"
    )
    write(catalog, "tiny-leak", GOOD.format(name="tiny-leak").replace("bits: 4", "bits: four") + where)
    code, err = run_main(["--recipes", str(catalog), "validate"], capsys)
    one_error(code, err, 2, recipe=True)
    assert f"tiny-leak.yaml: {field}: looks like " in err and "weights.bits" in err, err
    assert token not in err and token[8:30] not in err  # the one line does not publish it either


@pytest.mark.parametrize("command", [["build", "--device", "cpu"], ["eval"], ["card"], ["push", "--dry-run"]])
def test_every_stage_refuses_a_recipe_with_a_token(
    command: list[str], catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(catalog, "tiny-leak", GOOD.format(name="tiny-leak") + f"description: 'token {TOKENS['hugging face']}'\n")
    argv = ["--recipes", str(catalog), command[0], "tiny-leak", *command[1:], "--workdir", str(tmp_path / "w")]
    code, err = run_main(argv, capsys)
    one_error(code, err, 2, recipe=True)
    assert "description: looks like a Hugging Face token" in err and TOKENS["hugging face"] not in err, err
    assert not (tmp_path / "w").exists()


BENIGN = [
    "0123456789abcdef0123456789abcdef01234567",  # a commit pin
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a sha256
    "https://huggingface.co/meta-llama/Meta-Llama-3-70B-Instruct/blob/main/LICENSE?download=true&x=AbCd1234EfGh5678IjKl9012",
    "meta-llama/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 and LLaMA3-8B-Instruct-w4a16g128-GPTQ-v2-ckpt",
    "ThisIsALongCamelCaseIdentifierName2024 LlavaNextForConditionalGeneration",
    "Aaronhuang-778/SliM-LLM-W2A16g128-LLaMA3-8B, see arXiv:2404.14047 (Table 3), 2-bit weights collapse",
    "sk-learn style estimators; task-specific fine-tuning; hf_transfer speeds downloads",
]


@pytest.mark.parametrize("text", BENIGN)
def test_hashes_urls_names_and_prose_are_not_secrets(text: str) -> None:
    from zoo.recipe.tokens import secret_in

    assert secret_in(text) is None


def test_the_shipped_catalog_has_no_false_positive() -> None:
    from zoo.catalog import base_paths, validate

    assert validate([*base_paths(RECIPES), *recipe_paths(RECIPES)], strict=False) == []
    for path in recipe_paths(RECIPES):
        load_recipe(path)


def test_a_token_in_a_parent_is_reported_once_against_the_parent(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = TOKENS["hugging face"]
    parent = catalog / "_base" / "tiny-llama3.yaml"
    parent.write_text(parent.read_text() + f"description: 'shared token {token}'\n")
    for n in ("tiny-a", "tiny-b"):
        write(catalog, n, GOOD.format(name=n))
    code, err = run_main(["--recipes", str(catalog), "validate"], capsys)
    one_error(code, err, 2, recipe=True)
    found = [x for x in err.splitlines() if "looks like a Hugging Face token" in x]
    assert len(found) == 1 and "tiny-llama3.yaml: description:" in found[0], err  # not once per child
    assert token not in err
    code, err = run_main(["--recipes", str(catalog), "build", "tiny-a", "--workdir", str(tmp_path / "w")], capsys)
    one_error(code, err, 2, recipe=True)
    assert "tiny-llama3.yaml: description: looks like a Hugging Face token" in err and "tiny-a.yaml: description" not in err
    assert not (tmp_path / "w").exists()
