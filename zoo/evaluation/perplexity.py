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
) -> Perplexity:
    import torch
    import torch.nn.functional as F

    chunks = windows(ids, seqlen, max_windows)
    if not chunks:
        raise ValueError(f"text has {len(ids)} tokens, fewer than one window of {seqlen}")
    total = 0.0
    with torch.no_grad():
        for i, chunk in enumerate(chunks):
            x = torch.tensor([chunk], device=device)
            logits = model(input_ids=x).logits[0, :-1].float()
            loss = F.cross_entropy(logits, x[0, 1:], reduction="mean")
            total += float(loss) * seqlen
            if progress:
                progress(i + 1, len(chunks))
    return Perplexity(math.exp(total / (len(chunks) * seqlen)), len(chunks), len(chunks) * seqlen, seqlen)
