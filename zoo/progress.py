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


SLOW_LOOP_S = 2.0  # a backend loop that takes longer gets a log line off a terminal


def quiet_bars() -> None:
    """Off a terminal, switch every tqdm bar off, backends' included, and log one line for each of their
    loops that took a while (llm-compressor's per-layer "(3/33): Calibrating", say), so a long GPTQ
    build still shows it is moving.

    ``TQDM_DISABLE`` only sets a default and backends pass ``disable=`` themselves, so in CI logs each
    redraw became part of one 10,000-character line; zoo's stages log a line each instead."""
    import time

    import tqdm.std

    cls = tqdm.std.tqdm
    original_init, original_iter = cls.__init__, cls.__iter__
    if getattr(original_init, "_zoo_quiet", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original_init(self, *args, **kwargs)
        self._zoo_desc = kwargs.get("desc") or (args[1] if len(args) > 1 and isinstance(args[1], str) else None)

    def iterate(self: Any) -> Any:
        start, n = time.monotonic(), 0
        for n, item in enumerate(original_iter(self), 1):  # noqa: B007 (n counts what was yielded)
            yield item
        took = time.monotonic() - start
        desc = getattr(self, "_zoo_desc", None)
        if desc and took >= SLOW_LOOP_S:
            log.info("%s: %d done in %.0fs", str(desc).rstrip(": "), n, took)

    init._zoo_quiet = True  # type: ignore[attr-defined]
    cls.__init__ = init
    cls.__iter__ = iterate


def transient_bars() -> None:
    """On a terminal, backends' bars vanish when done (``leave=False``, as zoo's own): a finished bar
    left behind ended in a newline between zoo's log lines, which read as a run of blank lines."""
    import tqdm.std

    cls = tqdm.std.tqdm
    original_init = cls.__init__
    if getattr(original_init, "_zoo_transient", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["leave"] = False
        original_init(self, *args, **kwargs)

    init._zoo_transient = True  # type: ignore[attr-defined]
    cls.__init__ = init


class _NotApplicable(logging.Filter):
    """Drops a backend's advice that does not apply to what zoo runs (shown again with ``-v``)."""

    def __init__(self, *needles: str) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger("zoo").isEnabledFor(logging.DEBUG) or not any(
            n in record.getMessage() for n in self.needles
        )


# bitsandbytes' CPU backend asks at import for `pip install kernels` (an optional fused 4-bit matmul): it
# is imported through transformers and peft by every build and eval, although only the LoRA methods run
# its 4-bit layers, and they run correctly without that package.
NOT_APPLICABLE = {"bitsandbytes.backends.cpu.ops": ("kernels-community", "pip install kernels")}


def quiet_backend_advice() -> None:
    """Install the filters once, before the backends are imported."""
    for name, needles in NOT_APPLICABLE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotApplicable) for f in logger.filters):
            logger.addFilter(_NotApplicable(*needles))
