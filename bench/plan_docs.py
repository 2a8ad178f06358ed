"""docs/plan.md's printed plans: `zoo plan` of the study's bases on the runners release.yml's jobs ask for.

Run: python bench/plan_docs.py [--check]. Each block between ``<!-- bench:plan-NAME -->`` markers is the
text `zoo plan` prints for one recipe, on its release runner (the labels `zoo matrix` hands release.yml's
``runs-on``) or on a named runner class. Nothing is measured: the plan is computed from the shipped
configs, so the blocks carry no machine line, and ``--check`` (tests/test_plan_docs.py) fails when the
doc no longer says what `zoo plan` prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plan.md"
# block name -> (recipe, runner class or None for its release runner, extra zoo plan options)
BLOCKS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "plan-8b-gptq": ("llama3-8b-gptq-4bit", None, ()),
    "plan-8b-qlora": ("llama3-8b-qlora-4bit", None, ()),
    "plan-llava-awq": ("llava-next-8b-awq-4bit", None, ()),
    "plan-70b-gptq": ("llama3-70b-gptq-4bit", None, ()),
    "plan-70b-awq": ("llama3-70b-awq-4bit", None, ()),
    "plan-70b-billm": ("llama3-70b-billm-1.1bit", None, ()),
    "plan-70b-rtn-vllm": ("llama3-70b-rtn-4bit", None, ("--backend", "vllm")),
    "plan-70b-gptq-one-gpu": ("llama3-70b-gptq-4bit", "gpu-80gb", ()),
}


def render(name: str) -> str:
    """The block's Markdown: a line naming the runner and its labels, then what `zoo plan` prints."""
    from click.testing import CliRunner

    from zoo.catalog import load
    from zoo.cli import cli
    from zoo.plan import RUNNERS, runner_for, shape

    recipe_name, runner_name, extra = BLOCKS[name]
    recipes = ROOT / "recipes"
    recipe = load(recipe_name, recipes)
    backend = extra[1] if extra[:1] == ("--backend",) else "hf"
    runner = next(r for r in RUNNERS if r.name == runner_name) if runner_name else runner_for(recipe, shape(recipe, recipes),
                                                                                                backend=backend)  # fmt: skip
    if runner is None:
        raise SystemExit(f"{recipe_name} fits none of zoo's runner classes")
    args = ["--recipes", str(recipes), "plan", recipe_name, "--runner", runner.name, *extra]
    res = CliRunner().invoke(cli, args)
    if res.exit_code != 0:
        raise SystemExit(f"zoo {' '.join(args[2:])}: exit {res.exit_code}: {res.stderr.strip()}")
    which = "its release runner" if runner_name is None else "the runner class"
    head = (f"`zoo plan {recipe_name} {' '.join(extra)}`".replace(" `", "`") + f" on {which} **{runner.name}** "
            f"({runner.machine.describe()}; `runs-on: [{', '.join(runner.labels)}]`):")  # fmt: skip
    return f"{head}\n\n```text\n{res.stdout.rstrip()}\n```"


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    import report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when docs/plan.md differs from what zoo plan prints")
    args = p.parse_args(argv)
    text = DOC.read_text()
    new = text
    for name in BLOCKS:
        new = report.replace_block(new, name, render(name), "docs/plan.md")
    if args.check:
        if new != text:
            print("docs/plan.md differs from what zoo plan prints; fix: python bench/plan_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
