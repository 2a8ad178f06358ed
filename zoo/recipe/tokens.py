"""Secrets typed into a recipe: every string of it ends up in build.json, in the card and on the Hub, so a
token pasted into ``description`` or ``card.warnings`` would be published without a word.

Known token shapes are matched by prefix (Hugging Face ``hf_``, OpenAI-style ``sk-``, GitHub
``ghp_``/``github_pat_``..., AWS ``AKIA``/``ASIA``, a password in a URL); anything else must look like
random text to be flagged: one word of 30+ characters with upper case, lower case and digits, at most two
separators (model names and repo ids are words joined by '-', '/', '.'), a Shannon entropy of at least
3.9 bits per character and a character class that changes at almost every other character (random text
does; ``CamelCase`` words and ``W4A16-g128`` names do not). Hex is never flagged (commit pins are 40 hex,
sha256 sums 64), nor are URLs (a recipe links its license and sources).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

KNOWN = (
    ("a Hugging Face token", re.compile(r"hf_[A-Za-z0-9]{30,}")),
    ("an API key (sk-...)", re.compile(r"(?<![A-Za-z0-9_-])sk-(?:[A-Za-z]+-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("an AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z0-9+/=_.-]{30,}")
HEX = re.compile(r"[0-9a-fA-F]+")
MIN_ENTROPY = 3.9  # bits per character; hex tops out near 3.95 at these lengths, random base62 averages 4.5
MIN_CHANGES = 0.45  # share of neighbouring characters of different classes; random base62 about 0.6


def _kind(c: str) -> str:
    return "upper" if c.isupper() else "lower" if c.islower() else "digit" if c.isdigit() else "other"


def entropy(word: str) -> float:
    """Shannon entropy of ``word``'s characters, in bits per character."""
    n = len(word)
    return -sum(k / n * math.log2(k / n) for k in Counter(word).values())


def random_looking(word: str) -> bool:
    """Whether one word reads as a random token rather than a name, a hash or prose."""
    if len(word) < 30 or HEX.fullmatch(word.strip("=")):
        return False
    if {"upper", "lower", "digit"} - {_kind(c) for c in word} or sum(word.count(c) for c in "-/._") > 2:
        return False
    changes = sum(_kind(a) != _kind(b) for a, b in zip(word, word[1:], strict=False)) / (len(word) - 1)
    return entropy(word) >= MIN_ENTROPY and changes >= MIN_CHANGES


def secret_in(text: str) -> tuple[str, str] | None:
    """(what it looks like, a short preview) of the first secret-looking part of ``text``; None if none."""
    for what, pattern in KNOWN:
        m = pattern.search(text)
        if m:
            return what, m.group(0)
    for m in WORD.finditer(URL.sub(" ", text)):
        if random_looking(m.group(0)):
            return "a token (a long random-looking word)", m.group(0)
    return None


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, string) for every string in a parsed recipe, ``card.warnings.0`` style."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}.{i}" if path else str(i))


def preview(secret: str) -> str:
    """Enough of a secret to find it in the file, not enough to use it."""
    return f"{secret[:4]}…, {len(secret)} characters"
