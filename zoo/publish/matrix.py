"""``zoo matrix``: the recipe list as a GitHub Actions matrix, with runner labels by memory need.

``changed_since`` keeps recipes whose file, or any file they inherit from, differs from that git
ref (committed or not), so a change to ``recipes/_base/llama3.yaml`` re-releases every LLaMA-3 variant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from zoo.errors import ZooError


def runner(parameters_b: float) -> list[str]:
    """Labels of the self-hosted runner class that fits: host RAM for the bf16 weights (or disk
    offload past it), one decoder layer on the GPU."""
    if parameters_b < 1:
        return ["ubuntu-latest"]
    if parameters_b <= 16:
        return ["self-hosted", "linux", "gpu", "gpu-24gb"]
    return ["self-hosted", "linux", "gpu", "gpu-80gb", "ram-128gb"]


def changed_files(ref: str, root: Path) -> set[Path]:
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    diff = subprocess.run(["git", "diff", "--name-only", ref, "--", "."], cwd=root, capture_output=True, text=True)
    if top.returncode or diff.returncode:
        msg = (diff.stderr or top.stderr).strip().splitlines()
        raise ZooError(f"cannot diff recipes against {ref!r}: {msg[0] if msg else 'git failed'}; fix: give a ref that exists")
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "."], cwd=root, capture_output=True, text=True
    )
    base = Path(top.stdout.strip())
    names = diff.stdout.split() + [str(Path(root).resolve().relative_to(base) / n) for n in untracked.stdout.split()]
    return {(base / n).resolve() for n in names}


def matrix(root: Path, changed_since: str | None = None, family: str | None = None, method: str | None = None) -> dict[str, Any]:
    from zoo.catalog import entries, find, load
    from zoo.recipe.load import inherited_files

    rows = entries(root, family, method)
    if changed_since is not None:
        changed = changed_files(changed_since, root)
        rows = [r for r in rows if inherited_files(find(r.name, root)) & changed]
    include = []
    for r in rows:
        recipe = load(r.name, root)
        include.append(
            {"recipe": r.name, "runner": runner(recipe.base.parameters), "memory_gb": round(recipe.base.parameters * 2, 1)}
        )
    return {"include": include}
