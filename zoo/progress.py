"""Progress for long loops: a tqdm bar on a terminal, a log line every tenth of the way otherwise."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("zoo.progress")
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


class _LogLines(io.TextIOBase):
    """A file for tqdm that turns each redraw into one log line."""

    def write(self, text: str) -> int:
        text = _ESCAPES.sub("", text)  # nested bars move the cursor up and down between redraws
        for line in text.replace("\r", "\n").splitlines():
            if line.strip() and " 0%|" not in line:  # the opening draw says nothing yet
                log.info("%s", line.strip())
        return len(text)


def bars_to_log(every_s: float = 30.0) -> None:
    """Off a terminal, make every tqdm bar (backends' included) a log line at most every ``every_s``.

    ``TQDM_DISABLE`` only sets a default and backends pass ``disable=`` themselves, so in CI logs each
    redraw became part of one 10,000-character line, or, disabled, a 30-minute GPTQ run printed
    nothing at all; as log lines they are a readable heartbeat."""
    import tqdm.std

    original = tqdm.std.tqdm.__init__
    if getattr(original, "_zoo_logged", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.update(file=_LogLines(), mininterval=every_s, maxinterval=every_s, ncols=100, dynamic_ncols=False, disable=False)
        original(self, *args, **kwargs)

    init._zoo_logged = True  # type: ignore[attr-defined]
    tqdm.std.tqdm.__init__ = init  # type: ignore[method-assign]
