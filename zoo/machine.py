"""What every stage record says about where it ran: package versions, peak memory, and the machine."""

from __future__ import annotations

import platform
import resource
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

PACKAGES = ("torch", "transformers", "llmcompressor", "compressed-tensors", "huggingface-hub", "datasets", "accelerate")


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions by distribution name; None for a package that is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), **package_versions(PACKAGES)}
    from zoo import __version__

    out["zoo"] = __version__
    return out


def peak_host_rss() -> int:
    """Peak resident set size of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return {"name": torch.cuda.get_device_name(), "peak_bytes": int(torch.cuda.max_memory_allocated())}
