"""How long `zoo rehearse` takes: per recipe and for a whole selection (each recipe in a process of its own).

Run: python bench/rehearse.py [--all] [--limit 2] [--write-docs]. Not a test: it prints a table and
totals; --write-docs also writes the totals into docs/rehearsal.md (bench/report.py).

No Hub is reachable here, so the real bases are served by the project's Hub-protocol test server
(tests/hub_server.py) from their published configs with no weights (LLaMA-3-8B, LLaMA-3-70B,
LLaVA-Next-8B; the built-in LLaMA-3-style tokenizer) and WikiText2 / C4 / PTB in their Hub layouts
and lm-eval's zero-shot task datasets at their real ids (tests/hub_data.py, a few rows each), so
calibration, perplexity and lm-eval go through the real loaders. A wrapper recipe extends the real one
and changes only what is not served: MMLU is left out (its 57 subjects alone take a minute), LLaVA-Next
runs lmms-eval's four judge-free tasks (not MMBench, scored by a GPT judge), and LoRA recipes train
on the built-in instruction rows instead of Alpaca.
Everything else is what `zoo rehearse` does on a machine that reaches the Hub: fetch the small files
at the pinned revision, shrink, build with the recipe's method, evaluate, card, dry-run push. By
default one recipe per method and family; --all rehearses every non-tiny recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "bos_token_id": 128000,
    "eos_token_id": 128001, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}  # fmt: skip
LLAMA3_70B = {**LLAMA3_8B, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64}
CLIP_L336 = {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
             "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768}  # fmt: skip


def serve_bases(server, recipes: Path) -> dict[str, str]:  # noqa: ANN001 (a tests.hub_server.HubServer)
    """Stand-ins at the real repo ids; returns repo id -> the commit made for it."""
    from zoo.tiny.bases import builtin_path

    tiny = builtin_path("tiny-llama3")
    small = {p.name: p.read_bytes() for p in tiny.iterdir() if p.name != "model.safetensors"}
    llava_dir = builtin_path("tiny-llava-next")
    llava = json.loads((llava_dir / "config.json").read_text())
    llava.update(text_config={**LLAMA3_8B, "vocab_size": llava["text_config"]["vocab_size"]}, vision_config=CLIP_L336)
    llava_files = {p.name: p.read_bytes() for p in llava_dir.iterdir() if not p.name.endswith(".safetensors")}
    repos = {
        "meta-llama/Meta-Llama-3-8B": {**small, "config.json": json.dumps(LLAMA3_8B).encode()},
        "meta-llama/Meta-Llama-3-70B": {**small, "config.json": json.dumps(LLAMA3_70B).encode()},
        "llava-hf/llama3-llava-next-8b-hf": {**llava_files, "config.json": json.dumps(llava).encode()},
    }
    return {repo: server.state.craft(repo, files) for repo, files in repos.items()}


def offline_catalog(recipes: Path, out: Path, commits: dict[str, str]) -> None:
    """``out`` holds every recipe as a wrapper extending the real one: served revision, offline data."""
    shutil.copytree(recipes / "_base", out / "_base")
    shutil.copytree(recipes, out / "_real", ignore=shutil.ignore_patterns("_base"))
    for p in (out / "_real").glob("*.yaml"):
        p.write_text(p.read_text().replace("extends: _base/", "extends: ../_base/"))
    from zoo.recipe import load_recipe

    for p in sorted((out / "_real").glob("*.yaml")):
        r = load_recipe(p)
        if r.base.repo_id is None:
            continue
        # LLaVA-Next: lmms-eval's judge-free tasks on their served stand-ins (MMBench needs a GPT judge)
        text_tasks = "[arc_easy, arc_challenge, piqa, hellaswag, winogrande]"
        tasks = "[ai2d, chartqa, docvqa_val, mme]" if r.family == "llava-next" else text_tasks
        lora = "params: {dataset: builtin}\n" if "dataset" in type(r.params).model_fields else ""  # not alpaca
        (out / p.name).write_text(
            f"extends: _real/{p.stem}\nbase: {{revision: {commits[r.base.repo_id]}}}\n"
            f"eval: {{tasks: {tasks}}}\n{lora}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every non-tiny recipe, not one per method and family")
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help="write the totals into docs/rehearsal.md")
    args = parser.parse_args()
    from tests.hub_data import add_datasets
    from tests.hub_server import HubServer
    from tests.hub_vision import add_vision_datasets

    tmp = Path(tempfile.mkdtemp(prefix="zoo-rehearse-bench-"))
    server = HubServer(token=f"hf_{secrets.token_hex(16)}")
    os.environ.update(HF_ENDPOINT=server.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="0",
                      HF_DATASETS_OFFLINE="0")  # fmt: skip
    os.environ["HF_TOKEN"] = server.state.token  # lmms-eval loads its task data with a token
    try:
        commits = serve_bases(server, ROOT / "recipes")
        add_datasets(server)
        add_vision_datasets(server)
        catalog = tmp / "recipes"
        offline_catalog(ROOT / "recipes", catalog, commits)
        from zoo.catalog import recipe_paths
        from zoo.recipe import load_recipe
        from zoo.rehearse import STAGES, rehearse

        every = [load_recipe(p) for p in recipe_paths(catalog)]
        chosen, seen = [], set()
        for r in every:
            key = (r.method, r.family)
            if args.all or key not in seen:
                seen.add(key)
                chosen.append(r)
        start = time.time()
        results = rehearse(chosen, every, tmp / "work", catalog, args.limit)
        total = time.time() - start
    finally:
        server.stop()
    print(f"| recipe | {' | '.join(STAGES)} | seconds |")
    print(f"|---|{'---|' * len(STAGES)}---|")
    for r in results:
        cells = " | ".join(r.stages.get(s, "") for s in STAGES)
        print(f"| {r.name} | {cells} | {r.seconds:.1f} |" + (f" {r.error}" if r.error else ""))
    times = sorted(r.seconds for r in results)
    print(f"\n{len(results)} recipes in {total:.0f} s ({sum(not r.ok for r in results)} failed); per recipe "
          f"min {times[0]:.1f} s, median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    if args.write_docs:
        import resource

        import report

        # each recipe rehearses in a spawned process of its own: the peak is the larger of this process and
        # the largest child (RUSAGE_CHILDREN's ru_maxrss is the largest waited-for descendant's; Linux: KiB)
        rss_gb = max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) * 1024 / 1e9
        selection = "every Hub-base recipe (--all)" if args.all else "one per method and family"
        failed = [r.name for r in results if not r.ok]
        row = [selection, str(len(results)), str(len(failed)), f"{total:.0f}", f"{times[0]:.1f}",
               f"{times[len(times) // 2]:.1f}", f"{times[-1]:.1f}", f"{rss_gb:.1f}"]  # fmt: skip
        header = ["selection", "recipes", "failed", "total s", "min s", "median s", "max s", "peak RSS GB (one process)"]
        notes = [f"Failed: {', '.join(failed)}." if failed else "Every stage ok for every recipe."]
        name = "rehearse-all" if args.all else "rehearse"
        report.publish("rehearse", "docs/rehearsal.md", {name: {"header": header, "rows": [row], "notes": notes}})
    sys.exit(1 if any(not r.ok for r in results) else 0)


if __name__ == "__main__":
    main()
