"""The one device rule every stage follows: what ``--device auto|cuda|cpu`` means on this machine.

``auto`` is the GPU when one is visible, else the CPU; ``cuda`` without a visible GPU is an error
(exit 9) rather than a silent CPU run. A stage whose work is too heavy for a CPU passes ``heavy`` (the
problem, in one sentence): ``auto`` on a machine without a GPU then stops with it instead of starting a
run of days, and only an explicit ``cpu`` forces it. With ``hide``, ``cpu`` also hides the accelerators
from libraries that compute on any visible one (llm-compressor), as long as torch is not imported yet;
the build asks for that, the measuring stages do not (vLLM's own process keeps the GPU it was given).
"""

from __future__ import annotations

import os
import sys

from zoo.errors import NeedsAcceleratorError, ZooError

DEVICES = ("auto", "cuda", "cpu")


def resolve(device: str, heavy: str | None = None, hide: bool = False) -> str:
    """``cuda`` or ``cpu`` for the ``--device`` value ``device``."""
    if device not in DEVICES:
        raise ZooError(f"unknown device {device!r}; fix: use auto, cuda or cpu")
    if device == "cpu":
        if hide and "torch" not in sys.modules:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise NeedsAcceleratorError("--device cuda but no CUDA device is visible; fix: check the driver / CUDA_VISIBLE_DEVICES")
    if heavy is not None:
        raise NeedsAcceleratorError(f"{heavy}; fix: run on a GPU machine, or pass --device cpu to force a very slow CPU run")
    return "cpu"
