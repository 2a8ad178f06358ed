"""A lazy name -> module table, shared by the method and family registries.

Entries are module paths, imported on first use, so that listing or validating recipes never
imports a backend; a miss raises ``UnknownNameError`` with a did-you-mean, as lm-eval's registry does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from zoo.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, table: Mapping[str, str], attr: str = "SPEC") -> None:
        self.kind, self._table, self._attr = kind, dict(table), attr

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def names(self) -> list[str]:
        return list(self._table)

    def get(self, name: str) -> T:
        if name not in self._table:
            raise UnknownNameError(self.kind, name, self._table)
        spec: T = getattr(importlib.import_module(self._table[name]), self._attr)
        return spec
