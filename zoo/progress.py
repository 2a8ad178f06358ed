"""Progress for long loops: a tqdm bar on a terminal, a log line every tenth of the way otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

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
    last = [-1]

    def line(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            log.info("%s: %d/%d", desc, done, total)

    return line
