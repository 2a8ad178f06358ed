"""The text the built-in tiny bases learn from, and the held-out text they are measured on.

CPython ships ``pydoc_data.topics`` (about 465 KB of English prose under the PSF license) on every
machine, so the tiny bases, their calibration data and their perplexity text need no download.
The last tenth of every topic (cut at a paragraph break) is held out, so evaluation scores text the
model never saw but in the same register as its training text.
"""

from __future__ import annotations

HELD_OUT = 0.1


def _split(text: str) -> tuple[str, str]:
    cut = text.rfind("\n\n", 0, int(len(text) * (1 - HELD_OUT)))
    cut = cut if cut > 0 else int(len(text) * (1 - HELD_OUT))
    return text[:cut].strip(), text[cut:].strip()


def _parts(index: int) -> list[str]:
    from pydoc_data.topics import topics

    return [p for _, t in sorted(topics.items()) if (p := _split(t)[index])]


def train_text() -> str:
    """What the tiny bases were trained on, and calibrate on."""
    return "\n\n".join(_parts(0))


def heldout_text() -> str:
    """What the tiny bases never saw: their perplexity text."""
    return "\n\n".join(_parts(1))
