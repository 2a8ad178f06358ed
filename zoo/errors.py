"""The error hierarchy; the CLI turns each class into one line on stderr and its exit code.

Library code raises these for anything a user can fix (bad recipe, unknown name, missing extra) and
lets programming errors propagate as ordinary exceptions with a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class ZooError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line the CLI prints."""

    exit_code = 1


class RecipeError(ZooError):
    """One or more recipe files are invalid; ``problems`` holds every one found."""

    exit_code = 2

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in problems))


class UnknownNameError(ZooError):
    """A recipe, method, family, dataset or task name that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"unknown {kind} {name!r}{did_you_mean(name, known)}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A suffix like ``; did you mean 'gptq'?`` or the list of valid names when nothing is close."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if len(known) <= 12:
        return f"; choose one of: {', '.join(known)}"
    return ""
