"""``zoo rehearse``: shrunk real bases, and every stage of a release run on them on a CPU."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT
from tests.hub_data import add_datasets
from tests.hub_server import HubServer
from zoo.rehearse.shrink import shrink_config

LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
}
LLAMA3_70B = {**LLAMA3_8B, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64}
# Meta-Llama-3-8B's card front matter as published (its gating prompt shortened) and its license files
META_CARD = """---
language:
- en
pipeline_tag: text-generation
license: llama3
extra_gated_prompt: >-
  ### META LLAMA 3 COMMUNITY LICENSE AGREEMENT

  Meta Llama 3 Version Release Date: April 18, 2024
extra_gated_fields:
  First Name: text
  Last Name: text
  Date of birth: date_picker
  Country: country
  Affiliation: text
  geo: ip_location
  By clicking Submit below I accept the terms of the license and acknowledge that the information I provide will be collected stored processed and shared in accordance with the Meta Privacy Policy: checkbox
extra_gated_description: The information you provide will be collected, stored, processed and shared in accordance with the [Meta Privacy Policy](https://www.facebook.com/privacy/policy/).
extra_gated_button_content: Submit
---
## Model Details
"""
META_LICENSE = {"LICENSE": b"META LLAMA 3 COMMUNITY LICENSE AGREEMENT\n", "USE_POLICY.md": b"# Meta Llama 3 Acceptable Use Policy\n"}
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
LLAVA_NEXT_8B = {
    "architectures": ["LlavaNextForConditionalGeneration"],
    "model_type": "llava_next",
    "text_config": LLAMA3_8B,
    "vision_config": {
        "model_type": "clip_vision_model",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 336,
        "patch_size": 14,
        "projection_dim": 768,
    },
    "image_grid_pinpoints": PINPOINTS,
    "image_token_index": 128256,
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
}


@pytest.mark.parametrize("real", [LLAMA3_8B, LLAMA3_70B], ids=["8b", "70b"])
def test_shrunk_llama_keeps_what_stages_read(real: dict) -> None:
    small = shrink_config(real)
    assert small["num_hidden_layers"] == 2 and small["num_key_value_heads"] == 1
    ratio = real["num_attention_heads"] // real["num_key_value_heads"]
    assert small["num_attention_heads"] == ratio  # the GQA ratio
    assert small["hidden_size"] % 128 == 0 and small["intermediate_size"] % 128 == 0  # group size 128 divides
    assert (small["num_key_value_heads"] * small["head_dim"]) % 64 == 0  # AWQ's clipping step
    for key in ("vocab_size", "max_position_embeddings", "rope_theta", "bos_token_id", "eos_token_id", "architectures"):
        assert small[key] == real[key]
    assert real["num_hidden_layers"] > 2  # the input is not changed in place


def test_shrunk_llava_next_instantiates_and_keeps_the_image_grid() -> None:
    import torch
    import transformers

    small = shrink_config(LLAVA_NEXT_8B)
    assert small["image_grid_pinpoints"] == PINPOINTS and small["vision_config"]["image_size"] == 336
    assert small["vision_config"]["patch_size"] == 14 and small["vision_config"]["num_hidden_layers"] == 2
    assert small["text_config"]["hidden_size"] == 256
    small["text_config"] = {**small["text_config"], "vocab_size": 128320}
    config = transformers.LlavaNextConfig.from_dict(small)
    model = transformers.LlavaNextForConditionalGeneration(config)
    n = sum(p.numel() for p in model.parameters())
    assert n < 80e6, n  # embeddings and lm_head of the real vocabulary are most of it
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[128000, 42, 43]]))
    assert out.logits.shape == (1, 3, 128320)


def test_rehearse_a_tiny_recipe_through_every_stage_offline(tmp_path: Path) -> None:
    """Built-in bases are already tiny: the base stage is skipped, the rest run, the push is a dry run,
    and with no network (``HF_HUB_OFFLINE``, as on a laptop on a train) it plans without comparing and says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    res = subprocess.run(
        [sys.executable, "-m", "zoo", "--recipes", str(RECIPES), "rehearse", "tiny-llama3-rtn-4bit", "--json"],
        cwd=ROOT,
        env={**env, "ZOO_WORKDIR": str(tmp_path / "work")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    [row] = json.loads(res.stdout)
    stages = {"base": "skipped", "build": "ok", "eval": "ok", "card": "ok", "push": "ok (offline: not compared)"}
    assert row["ok"] and row["stages"] == stages, row
    assert (tmp_path / "work" / "_rehearsal" / "work" / "tiny-llama3-rtn-4bit" / "card" / "README.md").exists()
    assert not (tmp_path / "work" / "tiny-llama3-rtn-4bit").exists()  # never beside real builds


def test_rehearse_shrinks_a_real_base_fetched_at_its_pinned_revision(tmp_path: Path) -> None:
    """A Hub-protocol server holds meta-llama/Meta-Llama-3-8B's real config (no weights), a LLaMA-3-style
    tokenizer, and WikiText2 / C4 / PTB in their Hub layouts: the 8B GPTQ recipe calibrates on WikiText2 and
    measures the three perplexities through the real loaders, runs lm-eval's zero-shot tasks on their Hub
    datasets (MMLU's 57 subjects are left to the slow suite), cards and dry-run pushes, on the shrunk base."""
    import json
    import shutil

    from tests.conftest import write
    from zoo.tiny.bases import builtin_path

    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    try:
        tiny = builtin_path("tiny-llama3")
        files = {p.name: p.read_bytes() for p in tiny.iterdir() if p.name != "model.safetensors"}
        files["config.json"] = json.dumps(LLAMA3_8B).encode()
        files["model.safetensors.index.json"] = b'{"weight_map": {}}'  # present in the real repo; never fetched whole
        files.update(META_LICENSE, **{"README.md": META_CARD.encode()})
        commit = server.state.craft("meta-llama/Meta-Llama-3-8B", files)
        add_datasets(server)
        catalog = tmp_path / "recipes"
        shutil.copytree(RECIPES / "_base", catalog / "_base")
        text = (RECIPES / "llama3-8b-gptq-4bit.yaml").read_text()
        write(catalog, "llama3-8b-gptq-4bit", text + (
            f"base: {{revision: {commit}}}\neval: {{tasks: [arc_easy, arc_challenge, piqa, hellaswag, winogrande]}}\n"
        ))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=server.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
                   HF_DATASETS_OFFLINE="0")  # fmt: skip
        res = subprocess.run(
            [sys.executable, "-m", "zoo", "rehearse", "llama3-8b-gptq-4bit", "--json", "--push", "--recipes", str(catalog)],
            cwd=ROOT, env={**env, "ZOO_WORKDIR": str(tmp_path / "work"), "HF_TOKEN": server.state.token},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        pushed = server.state.repos.get("zoo-models/llama3-8b-gptq-4bit")
    finally:
        server.stop()
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    [row] = json.loads(res.stdout)
    assert row["ok"] and row["stages"] == {"base": "ok", "build": "ok", "eval": "ok", "card": "ok", "push": "ok"}
    base = next((tmp_path / "work" / "_rehearsal" / "bases").iterdir())
    config = json.loads((base / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["vocab_size"] == 128256 and config["num_attention_heads"] == 4
    assert not (base / "model.safetensors.index.json").exists()
    build = json.loads((tmp_path / "work" / "_rehearsal" / "work" / "llama3-8b-gptq-4bit" / "build.json").read_text())
    assert build["method"]["name"] == "gptq" and build["recipe"]["base"]["path"] == str(base.absolute())
    assert build["calibration"]["source"] == "Salesforce/wikitext" and build["calibration"]["split"] == "train"
    ev = json.loads((tmp_path / "work" / "_rehearsal" / "work" / "llama3-8b-gptq-4bit" / "eval.json").read_text())
    assert {"ppl/wikitext2", "ppl/c4", "ppl/ptb"} <= set(ev["metrics"])
    assert ev["details"]["perplexity"]["ptb"]["windows"] >= 1
    # the data's revisions as they resolved: PTB's Parquet export and WikiText's main, each to a commit
    ptb, wiki = ev["details"]["perplexity"]["ptb"], ev["details"]["perplexity"]["wikitext2"]
    assert ptb["source"] == "ptb-text-only/ptb_text_only" and ptb["revision"] == "refs/convert/parquet"
    assert len(ptb["commit"]) == 40 and len(wiki["commit"]) == 40 and build["calibration"]["commit"] == wiki["commit"]
    assert {"arc_easy/acc", "piqa/acc", "hellaswag/acc_norm", "winogrande/acc"} <= set(ev["metrics"])
    card = (tmp_path / "work" / "_rehearsal" / "work" / "llama3-8b-gptq-4bit" / "card" / "README.md").read_text()
    assert "- Salesforce/wikitext" in card  # the calibration set in the front matter (a --limit run lists no results)
    # a derivative of a gated base: its license files, the base's gating prompt and form, a gated repo
    from huggingface_hub import ModelCard

    data = ModelCard(card).data.to_dict()
    assert data["extra_gated_prompt"].startswith("### META LLAMA 3 COMMUNITY LICENSE AGREEMENT")
    assert data["extra_gated_fields"]["Country"] == "country" and data["extra_gated_button_content"] == "Submit"
    assert "| Access | gated like its base" in card and "Built with Meta Llama 3" in card
    assert pushed is not None and pushed.gated == "auto"
    head = pushed.commits[pushed.refs["main"]]["files"]
    assert head["LICENSE"].data == META_LICENSE["LICENSE"] and head["USE_POLICY.md"].data == META_LICENSE["USE_POLICY.md"]
    assert head["README.md"].data.decode() == card


@pytest.mark.slow
def test_one_recipe_per_method_and_family_rehearses(tmp_path: Path) -> None:
    """bench/rehearse.py's selection (every method, both families) on the served real bases and data."""
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "rehearse.py")], capture_output=True, text=True, timeout=3000)
    assert res.returncode == 0, res.stderr[-2000:]
    assert " 0 failed)" in res.stdout, res.stdout


@pytest.mark.slow
def test_the_whole_catalog_rehearses() -> None:
    """Every non-tiny recipe, as bench/rehearse.py --all runs them (about half an hour on a 2-core CPU)."""
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "rehearse.py"), "--all"], capture_output=True, text=True,
                         timeout=5400)  # fmt: skip
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " 0 failed)" in res.stdout, res.stdout


def test_several_recipes_rehearse_each_in_a_process_of_its_own(tmp_path: Path) -> None:
    """What one recipe leaves in memory is gone before the next: the caller never even imports torch."""
    script = f"""
import json, sys
from pathlib import Path
from zoo.catalog import load, recipe_paths
from zoo.recipe import load_recipe
from zoo.rehearse import rehearse
root = Path({str(RECIPES)!r})
catalog = [load_recipe(p) for p in recipe_paths(root)]
chosen = [load(n, root) for n in ("tiny-llama3-rtn-4bit", "tiny-llama3-rtn-8bit-pc")]
results = rehearse(chosen, catalog, Path({str(tmp_path / "work")!r}), root, limit=2)
print(json.dumps({{"torch": "torch" in sys.modules, "results": [r.to_json() for r in results]}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    out = json.loads(res.stdout.splitlines()[-1])
    assert [r["name"] for r in out["results"]] == ["tiny-llama3-rtn-4bit", "tiny-llama3-rtn-8bit-pc"]
    assert all(r["ok"] for r in out["results"]), out
    assert out["torch"] is False  # built, evaluated and carded in children only
