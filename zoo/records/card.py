"""``card/card.json``: which build and eval a rendered card shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from zoo.records.base import Record
from zoo.workdir import Layout


class CardRecord(Record):
    """``card/card.json``: which build and eval a card shows (push refuses a card of other records)."""

    STAGE: ClassVar[str] = "card"
    DONE: ClassVar[str] = "carded"

    inputs_sha256: str  # everything the card read, siblings and templates included: equal means skip
    build_sha256: str
    eval_sha256: str | None
    plot: dict[str, Any] | None
    plot_series: list[Any]
    zoo_version: str

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.card_json
