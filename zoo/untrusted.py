"""Strings from outside zoo on their way to a reader: one place that makes them inert.

Anything a remote repo, a base model's card, a pulled record, a safetensors header or a recipe field
can say ends up in front of someone: a terminal (where an escape sequence recolours or rewrites the
screen and a newline forges a line of zoo's own), a log, a Markdown card, YAML front matter or an
HTML page. Every such string goes through one of these functions first; none of them trusts its input.

- ``plain``: one printable line for a terminal or a log (control, bidi and line characters shown as
  escapes, length capped).
- ``markdown``: ``plain`` plus Markdown's and HTML's active characters escaped, for card text.
- ``link``: a URL kept only when it is ``https:``/``http:`` to the Hub endpoint's host.
- ``redact_url``: a URL without its userinfo (``user:token@``), for every place zoo stores or prints one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# C0 and C1 controls (newline, CR, ESC, DEL ...), line and paragraph separators, zero-width and
# bidirectional controls: what can move the cursor, start a new line or reorder what a reader sees.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_MD_ACTIVE = re.compile(r"([\\`*_{}\[\]()#|!~])")
DEFAULT_LIMIT = 200


def _escape(match: re.Match[str]) -> str:
    c = match.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def plain(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as one printable line: invisible characters escaped (``\\x1b``, ``\\n``), cut to
    ``limit`` characters with an ellipsis, so it can neither draw on a terminal nor pose as zoo's output."""
    text = _INVISIBLE.sub(_escape, str(value))
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def markdown(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``plain(value)`` with HTML's active characters as entities and Markdown's backslash-escaped: inline text that
    cannot open a link, an image, a table cell, a heading or a tag in a card."""
    text = plain(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_ACTIVE.sub(r"\\\1", text)


def redact_url(url: str) -> str:
    """``url`` without ``user:password@``: endpoints such as ``http://user:token@mirror`` are written
    to records, cards and logs only in this form."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return plain(url)
    if parts.username is None and parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def link(url: object, endpoint: str) -> str | None:
    """``url`` when it is an ``http(s):`` link to ``endpoint``'s host (without userinfo), else None: the
    only links a card or the site renders from data that came from outside."""
    if not isinstance(url, str) or _INVISIBLE.search(url) or len(url) > 2000:
        return None
    try:
        parts, home = urlsplit(url), urlsplit(endpoint)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.hostname != home.hostname:
        return None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return None
    if any(c in url for c in "\"'<>` "):
        return None
    return url
