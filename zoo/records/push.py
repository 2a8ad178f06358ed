"""``push.json``: the last release this workdir published."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from zoo.records.base import Record
from zoo.workdir import Layout


class PushRecord(Record):
    """``push.json``: the last release this workdir published, so cards link only to repos that exist."""

    STAGE: ClassVar[str] = "push"
    DONE: ClassVar[str] = "pushed"

    repo_id: str
    revision: str
    commit: str
    tag: str | None
    build_sha256: str
    endpoint: str
    pushed: str

    @field_validator("endpoint")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        """Stored, and read back from older records, without ``user:token@``: cards and the site link to it."""
        from zoo.untrusted import redact_url

        return redact_url(value)

    @classmethod
    def path(cls, layout: Layout) -> Path:
        return layout.push_json
