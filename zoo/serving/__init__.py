"""``zoo bench``: what users get, proven. Each published build is loaded in every serving runtime zoo can
find (transformers always, vLLM when a vLLM python is available), generates, and is compared with
transformers on the same held-out tokens; the variant and its 16-bit base are timed in each runtime
that serves it. Cards offer only runtimes that passed, on the device kind they passed on.

- ``run.py``: the stage (lock, skip, record ``bench.json``).
- ``hf.py``: transformers, in zoo's process; the reference, and the speed protocol.
- ``vllm_process.py`` / ``vllm_child.py``: vLLM in its own venv and process group, JSON over stdout.
- ``schemes.py``: the scheme label and the agreement tolerance per scheme, with why.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bench"]


def bench(*args: Any, **kwargs: Any) -> Any:
    from zoo.serving.run import bench as run

    return run(*args, **kwargs)
