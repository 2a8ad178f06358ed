"""Progress for long loops: a tqdm bar on a terminal; off a terminal (CI logs, redirected output) no
progress output at all, only one log line when each loop finishes, beside the stages' own lines."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("zoo.progress")


def reporter(desc: str) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback for ``desc``."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = None

        def tick(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc=desc, leave=False)
            bar.n = done
            bar.refresh()
            if done >= total:
                bar.close()

        return tick

    def line(done: int, total: int) -> None:
        if done >= total:
            log.info("%s: %d/%d done", desc, done, total)

    return line


def quiet_bars() -> None:
    """Off a terminal, switch every tqdm bar off, backends' included.

    ``TQDM_DISABLE`` only sets a default and backends pass ``disable=`` themselves, so in CI logs each
    redraw became part of one 10,000-character line; zoo's stages log a line each instead."""
    import tqdm.std

    original = tqdm.std.tqdm.__init__
    if getattr(original, "_zoo_quiet", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    init._zoo_quiet = True  # type: ignore[attr-defined]
    tqdm.std.tqdm.__init__ = init
