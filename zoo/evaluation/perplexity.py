"""Perplexity as GPTQ and the study compute it, not lm-eval's word perplexity.

The split's text is tokenized whole and cut into non-overlapping windows of ``seqlen`` tokens (the
tail shorter than a window is dropped). Each window's mean next-token loss is taken in fp32; the
perplexity is exp of the mean over windows, i.e. exp(sum(nll_w * seqlen) / (n * seqlen)) as in GPTQ's
``llama_eval``. C4 uses GPTQ's validation subset: the first 256 windows of its first 1100 documents.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
C4_WINDOWS = 256


@dataclass(frozen=True)
class Perplexity:
    value: float
    windows: int
    tokens: int
    seqlen: int


def windows(ids: list[int], seqlen: int, max_windows: int | None = None) -> list[list[int]]:
    n = len(ids) // seqlen
    if max_windows is not None:
        n = min(n, max_windows)
    return [ids[i * seqlen : (i + 1) * seqlen] for i in range(n)]


def perplexity(
    model: Callable[..., Any],
    ids: list[int],
    seqlen: int,
    device: str = "cpu",
    max_windows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 1,
) -> Perplexity:
    """Windows go through the model ``batch_size`` at a time (they are all ``seqlen`` long, so no
    padding changes a window's loss); each window's loss is still taken on its own in fp32, so the
    fp32 copy of the logits never holds more than one window."""
    import torch
    import torch.nn.functional as F

    chunks = windows(ids, seqlen, max_windows)
    if not chunks:
        raise ValueError(f"text has {len(ids)} tokens, fewer than one window of {seqlen}")
    step = max(1, batch_size)
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(chunks), step):
            x = torch.tensor(chunks[start : start + step], device=device)
            logits = model(input_ids=x).logits
            for row in range(x.shape[0]):
                # under a device map the logits come out on the last layer's device, not the input's
                loss = F.cross_entropy(logits[row, :-1].float(), x[row, 1:].to(logits.device), reduction="mean")
                total += float(loss) * seqlen
            del logits
            if progress:
                progress(min(start + step, len(chunks)), len(chunks))
    return Perplexity(math.exp(total / (len(chunks) * seqlen)), len(chunks), len(chunks) * seqlen, seqlen)
