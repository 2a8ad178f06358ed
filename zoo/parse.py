"""Parsing YAML and JSON that came from outside zoo (a base's card and config, a safetensors header),
within limits on size, nesting and, for YAML, aliases.

PyYAML's ``SafeLoader`` runs no code, but it is not safe from size: an alias is a reference, and every
later consumer (``json.dumps`` into build.json, ``yaml.safe_dump`` into a card's front matter, Jinja)
expands it. 354 bytes of nested aliases in a base card's ``extra_gated_*`` field became a 26.5 MB
build.json. Remote YAML therefore may not use aliases at all (Hub cards have no need of them), and both
formats are refused past a size, a nesting depth and a number of nodes. ``LimitError`` is a
``ValueError``, so readers that already treat a malformed file as "nothing here" keep doing so; those
that must not silently drop the data turn it into a ``VerifyError`` with their own fix.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from zoo.untrusted import plain

MAX_DEPTH = 32
MAX_NODES = 100_000


class LimitError(ValueError):
    """Data from outside that is over one of zoo's limits (its message says which)."""


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and counts nodes and nesting while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise LimitError(f"a YAML alias (*{plain(event.anchor, 40)}, line {line}): zoo reads no aliases from outside")
        self._nodes += 1
        self._depth += 1
        try:
            if self._nodes > MAX_NODES:
                raise LimitError(f"more than {MAX_NODES} YAML nodes")
            if self._depth > MAX_DEPTH:
                raise LimitError(f"YAML nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, max_bytes: int) -> Any:
    """One YAML document from outside, refused (``LimitError``) when longer than ``max_bytes``, when it
    uses an alias, or when it nests or counts past ``MAX_DEPTH`` / ``MAX_NODES``; ``yaml.YAMLError``
    for YAML that does not parse."""
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise LimitError(f"YAML longer than {max_bytes} bytes")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def depth(value: Any) -> int:
    """How deeply lists and mappings nest in ``value`` (a scalar is 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if children is None:
            continue
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in children)
    return deepest


def load_json(data: bytes | str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """JSON from outside, refused (``LimitError``) past ``max_bytes`` or ``max_depth`` levels of nesting;
    ``ValueError`` for JSON that does not parse."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise LimitError(f"JSON longer than {max_bytes} bytes")
    try:
        value = json.loads(data)
    except RecursionError:  # nesting deeper than the decoder's stack: over any limit of ours too
        raise LimitError(f"JSON nested more than {max_depth} levels deep") from None
    if depth(value) > max_depth:
        raise LimitError(f"JSON nested more than {max_depth} levels deep")
    return value


# A base card's mirrored ``extra_gated_*`` fields, as JSON in build.json and front matter in the card: Meta's
# whole license prompt is about 10 kB.
MAX_GATING_BYTES = 64 << 10
MAX_GATING_DEPTH = 6


def check_gating(fields: dict[str, Any]) -> None:
    """The mirrored gating fields within their limits (``LimitError`` past them): one check for the build,
    which mirrors them, and for build.json, which any editor or older zoo may have made larger."""
    load_json(json.dumps(fields, default=str), MAX_GATING_BYTES, MAX_GATING_DEPTH)

