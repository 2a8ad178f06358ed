"""One thing wrong with one recipe file; every check appends these so ``zoo validate`` reports all at once."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one recipe file: where, what, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        file = os.path.relpath(self.file) if os.path.isabs(self.file) else self.file
        file = self.file if file.startswith("..") else file
        where = f"{file}: {self.field}" if self.field else file
        return f"{where}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")
