"""``RunOptions``: how a run goes, the same for one stage (``zoo build``), a release and a rehearsal.

One frozen object instead of each stage's own list of positional arguments: the CLI builds it from its
flags once, and every stage reads the fields it needs (the build ``host_memory``, the eval ``limit``,
``batch_size``, ``backend`` and ``share_baseline``, push ``dry_run`` and ``signer``). ``recipes`` is the
catalog folder the recipe came from: relative paths in a recipe (a local base, task data) resolve against it. Nothing here
decides a result's numbers on its own: what does is recorded by the stage (the eval's suite, the
build's device).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.publish.sign import Signer
    from zoo.recipe import Recipe


@dataclass(frozen=True)
class RunOptions:
    recipes: Path  # the catalog folder (a recipe's relative paths resolve against it)
    device: str = "auto"  # auto, cuda or cpu: zoo.device.resolve says what each means here
    host_memory: int | None = None  # bytes of host RAM for weights; the rest is offloaded to disk
    backend: str = "hf"  # the eval's lm-eval model backend (hf or vllm)
    batch_size: int = 1  # eval items per forward pass
    limit: int | None = None  # at most N eval items per task and N perplexity windows (recorded as such)
    force: bool = False  # redo a stage whose record is current
    wait: bool = False  # wait for another zoo process's lock instead of failing
    allow_regression: bool = False  # a failed recovery gate is reported, not an error
    speed: bool = True  # bench: time the variant and its base, not only check it serves
    dry_run: bool = False  # push: list what would change, upload nothing
    signer: Signer | None = None  # push: sign the release manifest
    siblings: tuple[Recipe, ...] | None = None  # card: the recipes it compares with (None: the catalog's)
    share_baseline: bool = False  # eval: publish a measured 16-bit baseline to the Hub store (zoo.publish.baselines)
    from_hub: bool | None = None  # card, collection: include the siblings published on the Hub (None: unless offline)

    def but(self, **changes: object) -> RunOptions:
        """A copy with ``changes`` (a stage that must not pass one option on, say)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
