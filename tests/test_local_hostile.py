"""Issue #28, hostile input on this machine's side: a card template named by path or playing with Jinja,
a link in place of the lock or a record, a YAML alias bomb in a base's card, a token typed into a
recipe, a base that wants its own code run, and an eval.json whose metric keys are not ``group/name``.

Each ends in one ``error:`` line with its exit code, no traceback, nothing rendered or written, and
whatever a link points at byte-for-byte as it was. CLI cases run the real entry point in this process;
the Hub-served bases run ``python -m zoo`` against ``tests/hub_server.py`` (huggingface_hub reads its
offline switch at import)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, write
from tests.hub_server import HubServer
from tests.test_bad_input import GOOD, run_main
from zoo.catalog import load, recipe_paths
from zoo.errors import CardError, UsageError, VerifyError
from zoo.recipe import load_recipe
from zoo.recipe.schema import CardSpec
from zoo.workdir import Layout

NAME = "tiny-llama3-rtn-4bit"
TINY = ROOT / "zoo" / "tiny" / "tiny-llama3"


def one_error(code: int, err: str, expected: int, recipe: bool = False) -> str:
    """The exit code, no traceback, and one ``error:`` line (a recipe's problems: a line per problem)."""
    assert code == expected, err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    if recipe:
        assert any(".yaml: " in x for x in lines), err
    else:
        assert len([x for x in lines if x.startswith("error:")]) == 1, err
    return err


def synthetic(recipe, workdir: Path) -> None:  # noqa: ANN001
    from tests.test_card import synthetic as card_synthetic

    card_synthetic(recipe, workdir)


# --- 1. card templates: names only, rendered in a sandbox ---------------------------------------------


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    """A template outside the template folder that runs code when rendered unsandboxed."""
    marker = tmp_path / "PWNED"
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "evil.md.j2").write_text(f"{{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}}\n")
    return folder / "evil"


@pytest.mark.parametrize("command", ["validate", "build", "card"])
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_template_named_by_path_is_refused_by_every_stage(
    command: str, how: str, evil: Path, catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = str(evil) if how == "absolute" else "../../elsewhere/evil"
    write(catalog, "tiny-evil", GOOD.format(name="tiny-evil"))
    plain = load_recipe(catalog / "tiny-evil.yaml")
    write(catalog, "tiny-evil", GOOD.format(name="tiny-evil") + f"card: {{template: '{name}'}}\n")
    work = tmp_path / "work"
    synthetic(plain.model_copy(update={"card": CardSpec(template=name)}), work)  # what card would render
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    argv = ["--recipes", str(catalog), command] + ([] if command == "validate" else ["tiny-evil", "--workdir", str(work)])
    code, err = run_main(argv + (["--device", "cpu"] if command == "build" else []), capsys)
    one_error(code, err, 2, recipe=True)
    assert "card.template" in err and "is not a template name" in err, err
    assert not (tmp_path / "PWNED").exists()
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before  # nothing built or rendered


def test_a_link_out_of_the_template_folder_is_refused(evil: Path, tmp_path: Path) -> None:
    from zoo.card.check import template_file

    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "ok.md.j2").write_text("ok\n")
    (folder / "sneaky.md.j2").symlink_to(evil.with_suffix(".md.j2"))
    assert template_file("ok", folder) == folder / "ok.md.j2"
    for name in ("sneaky", "missing", "/etc/passwd", "a/b", "..", "ok\n", 3):
        with pytest.raises(CardError) as e:
            template_file(name, folder)
        assert "\n" not in str(e.value) and "fix: " in str(e.value)


PAYLOADS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ fmt.__globals__ }}",
    "{{ '{0.__class__.__base__}'.format(1) }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_template_reaching_for_python_internals_fails_in_one_line(payload: str, tmp_path: Path) -> None:
    from zoo.card import render

    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "evil.md.j2").write_text(f"# {{{{ recipe.name }}}}\n{payload}\n")
    recipe = load(NAME, RECIPES)
    recipe = recipe.model_copy(update={"card": recipe.card.model_copy(update={"template": "evil"})})
    work = tmp_path / "work"
    synthetic(recipe, work)
    with pytest.raises(CardError) as e:
        render(recipe, [recipe], work, templates=folder)
    assert "SecurityError" in str(e.value) and "\n" not in str(e.value), e.value
    assert not Layout(work, NAME).card.exists()


def test_the_shipped_templates_render_in_the_sandbox(tmp_path: Path) -> None:
    from zoo.card import render

    recipe = load(NAME, RECIPES)
    synthetic(recipe, tmp_path)
    text = render(recipe, [load_recipe(p) for p in recipe_paths(RECIPES)], tmp_path).readme.read_text()
    assert f"# {NAME}\n" in text


# --- 2. links in place of the lock or a record --------------------------------------------------------


@pytest.fixture
def carded(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    synthetic(load(NAME, RECIPES), work)
    return work


@pytest.mark.parametrize("command", [["card"], ["push", "--dry-run"]])
@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_in_place_of_the_lock_is_refused_and_its_target_kept(
    command: list[str], dangling: bool, carded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "precious.txt"
    if not dangling:
        victim.write_bytes(b"data someone cares about\n")
    lock = Layout(carded, NAME).lock
    lock.symlink_to(victim)
    code, err = run_main(["--recipes", str(RECIPES), *command[:1], NAME, *command[1:], "--workdir", str(carded)], capsys)
    one_error(code, err, 2)
    assert f"{lock} is a symbolic link" in err and f"fix: remove the link (rm {lock})" in err, err
    assert victim.read_bytes() == b"data someone cares about\n" if not dangling else not victim.exists()
    assert lock.is_symlink() and not Layout(carded, NAME).card.exists()


def test_a_link_in_place_of_a_record_is_refused_and_its_target_kept(
    carded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"not json, not zoo's\n")
    verified = Layout(carded, NAME).verified  # written by every stage that checks the build
    verified.symlink_to(victim)
    code, err = run_main(["--recipes", str(RECIPES), "card", NAME, "--workdir", str(carded)], capsys)
    one_error(code, err, 2)
    assert f"{verified} is a symbolic link" in err, err
    assert victim.read_bytes() == b"not json, not zoo's\n"


def test_records_are_never_written_through_a_link(carded: Path, tmp_path: Path) -> None:
    from zoo.records import BuildRecord

    layout = Layout(carded, NAME)
    record = BuildRecord.require(layout)
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"keep me\n")
    layout.build_json.unlink()
    layout.build_json.symlink_to(victim)
    with pytest.raises(UsageError, match="remove the link"):
        record.write(layout)
    assert victim.read_bytes() == b"keep me\n" and layout.build_json.is_symlink()


def test_the_provenance_stamp_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    from zoo.quantize.provenance import read_metadata, stamp

    folder = tmp_path / "model"
    folder.mkdir()
    header = b'{"__metadata__":{"format":"pt"}}'
    (folder / "m.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"keep me\n")
    (folder / ".m.safetensors.stamp").symlink_to(victim)  # the temporary name the stamp writes
    stamp(folder, {"recipe": NAME})
    assert victim.read_bytes() == b"keep me\n"
    assert read_metadata(folder / "m.safetensors") == {"format": "pt", "zoo.recipe": NAME}
    assert sorted(p.name for p in folder.iterdir()) == ["m.safetensors"]


# --- 3. a YAML alias bomb in a base's card --------------------------------------------------------------


def alias_bomb(levels: int = 9, fan: int = 4) -> str:
    """Nested aliases under an ``extra_gated_*`` key: a few hundred bytes that expand to fan**levels strings."""
    lines = ['  l0: &l0 ["lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return "---\nlicense: llama3\nextra_gated_fields:\n" + "\n".join(lines) + "\n---\n# a base\n"


def test_the_alias_bomb_is_small_and_refused_before_expanding(tmp_path: Path) -> None:
    from zoo.loader import gating
    from zoo.parse import LimitError, load_yaml

    bomb = alias_bomb()
    assert len(bomb) < 512
    with pytest.raises(LimitError, match="alias"):
        load_yaml(bomb.split("---\n")[1], 1 << 20)
    (tmp_path / "README.md").write_text(bomb)
    with pytest.raises(VerifyError, match=r"README.md\) is over zoo's limits for data from outside: a YAML alias"):
        gating(tmp_path)


def test_gating_fields_are_capped_and_a_real_card_still_mirrors(tmp_path: Path) -> None:
    from tests.test_rehearse import META_CARD
    from zoo.loader import gating

    (tmp_path / "README.md").write_text(META_CARD)
    assert gating(tmp_path)["extra_gated_fields"]["Country"] == "country"
    (tmp_path / "README.md").write_text(f"---\nextra_gated_prompt: {'x' * (100 << 10)}\n---\n")
    with pytest.raises(VerifyError, match="extra_gated_"):
        gating(tmp_path)
    deep = "---\nextra_gated_fields: " + "[" * 60 + "]" * 60 + "\n---\n"
    (tmp_path / "README.md").write_text(deep)
    with pytest.raises(VerifyError, match="nested"):
        gating(tmp_path)


def test_remote_json_is_capped_in_size_and_depth() -> None:
    from zoo.parse import LimitError, load_json

    assert load_json(b'{"a": [1, {"b": 2}]}', 100) == {"a": [1, {"b": 2}]}
    with pytest.raises(LimitError, match="longer"):
        load_json(b"[" + b"1," * 100 + b"1]", 100)
    for n in (40, 100_000):  # past our depth, and past the decoder's own stack
        with pytest.raises(LimitError, match="nested"):
            load_json("[" * n + "]" * n, 1 << 20)


def zoo_online(hub: HubServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
               HF_TOKEN=hub.state.token, ZOO_CACHE=os.environ["ZOO_CACHE"])  # fmt: skip
    return subprocess.run([sys.executable, "-m", "zoo", *args], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)  # fmt: skip


def served_base(hub: HubServer, repo: str, readme: str | None = None, config: dict | None = None) -> str:
    """The tiny base's small files (no weights: every refusal here comes before they are read) at a commit."""
    files = {p.name: p.read_bytes() for p in TINY.iterdir() if p.name != "model.safetensors"}
    if config is not None:
        files["config.json"] = json.dumps(config).encode()
    if readme is not None:
        files["README.md"] = readme.encode()
    return hub.state.craft(repo, files)


def hub_recipe(catalog: Path, name: str, repo: str, commit: str) -> None:
    write(catalog, name, GOOD.format(name=name) + f"base: {{builtin: null, repo_id: {repo}, revision: {commit}}}\n")


def test_a_base_card_alias_bomb_stops_the_build_with_nothing_written(hub: HubServer, catalog: Path, tmp_path: Path) -> None:
    commit = served_base(hub, "someone/bomb-base", readme=alias_bomb())
    hub_recipe(catalog, "tiny-bomb", "someone/bomb-base", commit)
    work = tmp_path / "work"
    res = zoo_online(hub, tmp_path, "--recipes", str(catalog), "build", "tiny-bomb", "--device", "cpu", "--workdir", str(work))
    one_error(res.returncode, res.stderr, 10)
    assert "README.md) is over zoo's limits for data from outside: a YAML alias" in res.stderr
    assert not (work / "tiny-bomb").exists()


# --- 5a. a base that asks for its repository's code ------------------------------------------------------

CUSTOM = {**json.loads((TINY / "config.json").read_text()), "model_type": "evil_llama",
          "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}}  # fmt: skip


@pytest.mark.parametrize("config", [CUSTOM, {**CUSTOM, "model_type": "llama"}], ids=["custom-type", "known-type"])
def test_a_local_base_asking_for_its_own_code_is_one_line(
    config: dict, catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    shutil.copytree(TINY, base, ignore=shutil.ignore_patterns("model.safetensors"))
    (base / "config.json").write_text(json.dumps(config))
    write(catalog, "tiny-code", GOOD.format(name="tiny-code") + f"base: {{builtin: null, path: {base}}}\n")
    code, err = run_main(
        ["--recipes", str(catalog), "build", "tiny-code", "--device", "cpu", "--workdir", str(tmp_path / "w")], capsys
    )
    one_error(code, err, 2)
    assert f"base {base} asks to run code from its repository" in err and "zoo does not run repository code" in err, err
    assert not (tmp_path / "w" / "tiny-code").exists()


def test_a_hub_base_asking_for_its_own_code_is_one_line(hub: HubServer, catalog: Path, tmp_path: Path) -> None:
    commit = served_base(hub, "someone/custom-code", config=CUSTOM)
    hub_recipe(catalog, "tiny-remote-code", "someone/custom-code", commit)
    res = zoo_online(hub, tmp_path, "--recipes", str(catalog), "build", "tiny-remote-code", "--device", "cpu",
                     "--workdir", str(tmp_path / "w"))  # fmt: skip
    one_error(res.returncode, res.stderr, 2)
    assert "base someone/custom-code asks to run code from its repository" in res.stderr, res.stderr


# --- 5b. eval.json with metric keys that are not group/name ----------------------------------------------


@pytest.mark.parametrize("section", ["metrics", "baseline"])
def test_metric_keys_without_a_group_make_eval_json_unreadable(
    section: str, carded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout(carded, NAME)
    data = json.loads(layout.eval_json.read_text())
    target = data["baseline"]["metrics"] if section == "baseline" else data["metrics"]
    target["wikitext2"] = target.pop(next(iter(target)))
    layout.eval_json.write_text(json.dumps(data))
    code, err = run_main(["--recipes", str(RECIPES), "card", NAME, "--workdir", str(carded)], capsys)
    one_error(code, err, 8)
    assert f"{NAME}'s eval.json in {layout.folder} is unreadable" in err and f"fix: zoo eval {NAME} --force" in err, err
    assert not layout.card.exists()


# --- follow-ups: records past the limits, temporary files of other stages ---------------------------------


def test_a_deeply_nested_record_is_unreadable_not_a_traceback(carded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = Layout(carded, NAME)
    saved = layout.eval_json.read_bytes()
    try:
        layout.eval_json.write_text('{"details": ' + "[" * 50_000 + "]" * 50_000 + "}")
        code, err = run_main(["--recipes", str(RECIPES), "card", NAME, "--workdir", str(carded)], capsys)
        one_error(code, err, 8)
        assert "eval.json" in err and "unreadable" in err, err
    finally:
        layout.eval_json.write_bytes(saved)


def test_a_build_json_with_oversized_gating_fields_is_unreadable(carded: Path) -> None:
    from zoo.records import BuildRecord

    layout = Layout(carded, NAME)
    data = json.loads(layout.build_json.read_text())
    assert BuildRecord.parse(data) is not None
    assert BuildRecord.parse({**data, "base_gating": {"extra_gated_prompt": "x" * (70 << 10)}}) is None
    deep: dict = {}
    node = deep
    for _ in range(10):
        node["k"] = {}
        node = node["k"]
    assert BuildRecord.parse({**data, "base_gating": deep}) is None


def test_eval_samples_and_lora_checkpoints_replace_a_planted_link(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from zoo.evaluation.harness import write_samples
    from zoo.lora.train import CHECKPOINT, _save

    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"keep me\n")
    out = tmp_path / "eval-samples.jsonl.gz"
    (tmp_path / f".{out.name}.partial").symlink_to(victim)
    write_samples(out, {"arc_easy": [{"doc_id": 0}]})
    assert victim.read_bytes() == b"keep me\n" and out.is_file()
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / f".{CHECKPOINT.format(1)}.tmp").symlink_to(victim)
    model = torch.nn.Linear(2, 2)
    _save(folder, 1, model, torch.optim.SGD(model.parameters(), lr=0.1), [1.0], "key")
    assert victim.read_bytes() == b"keep me\n" and (folder / CHECKPOINT.format(1)).is_file()
