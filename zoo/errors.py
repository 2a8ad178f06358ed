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
    meaning = "anything else a user can fix (bad data file, unknown device, ...)"


class RecipeError(ZooError):
    """One or more recipe files are invalid; ``problems`` holds every one found."""

    exit_code = 2

    def __init__(self, problems: Sequence[object], summary: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join([*(str(p) for p in problems), *([summary] if summary else [])]))


class UnknownNameError(ZooError):
    """A recipe, method, family, dataset or task name that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str], fix: str | None = None) -> None:
        """``fix``: what to do when no known name is close enough to suggest (``see `zoo list```)."""
        self.kind, self.name = kind, name
        hint = did_you_mean(name, known) or (f"; fix: {fix}" if fix else "")
        super().__init__(f"unknown {kind} {name!r}{hint}")


# One class per exit code (the README's table lists them). Modules raise these; none defines its own.


class UsageError(ZooError):
    """A bad command-line value or a bad template/task-data setting: fix the input."""

    exit_code = 2
    meaning = "bad input: invalid recipe (`zoo validate` lists every problem), unknown name, bad option value, unusable workdir"


class NotBuildableError(ZooError):
    """The method is in the catalog but has no builder yet."""

    exit_code = 3
    meaning = "the method is in the catalog but not implemented yet"


class NeedsAcceleratorError(ZooError):
    """The stage needs a CUDA device and none is visible."""

    exit_code = 4
    meaning = "needs a GPU (none visible)"


class HubError(ZooError):
    """The Hub (or a base model on it) cannot be reached, or refused a request."""

    exit_code = 5
    meaning = "the Hub or a base model cannot be reached or refused a request"


class MissingExtraError(ZooError):
    """An optional dependency group (``.[gptqmodel]``, ``.[vision]``) is not installed."""

    exit_code = 6
    meaning = "a missing optional extra (`.[gptqmodel]`, `.[vision]`)"


class GateError(ZooError):
    """A metric's recovery fell below the recipe's ``eval.min_recovery``."""

    exit_code = 7
    meaning = "the recovery gate failed (`--allow-regression` to accept)"


class NotReadyError(ZooError):
    """A stage's input is missing, stale or no longer matches its record: re-run the stage it names."""

    exit_code = 8
    meaning = (
        "an earlier stage is missing or no longer matches: the checkpoint differs from `build.json`, `eval.json` "
        "measured an earlier build, the card is older than either; the message names the stage to re-run"
    )


class TokenError(ZooError):
    """No Hugging Face token, or one the Hub rejects or that cannot write where asked."""

    exit_code = 9
    meaning = "Hugging Face token missing, rejected, or unable to write there"


class VerifyError(ZooError):
    """A download does not match its published manifest, or a remote path is unsafe."""

    exit_code = 10
    meaning = "a download failed verification, or a remote path is unsafe"


class DiskSpaceError(ZooError):
    """Not enough free disk for a stage's output; nothing earlier was touched."""

    exit_code = 11
    meaning = (
        "not enough disk space (checked before writing; a write that still fails keeps nothing and leaves earlier results intact)"
    )


class BusyError(ZooError):
    """Another live process holds this recipe's stage lock."""

    exit_code = 12
    meaning = "another zoo process holds this recipe (`--wait` waits for it)"


class DoesNotFitError(ZooError):
    """A stage needs more accelerator, host or disk memory than the machine has, even offloaded."""

    exit_code = 13
    meaning = "a stage does not fit the machine (`zoo plan` names the smallest runner that would)"


INTERRUPTED = (
    "130 / 143",
    "interrupted by Ctrl-C / terminated by SIGTERM (what CI sends on cancel): nothing half-written is kept; run "
    "the same command again to resume",
)


def exit_codes() -> list[tuple[str, str]]:
    """(exit code, meaning) for every code zoo exits with, from the classes themselves: the README's table
    is this list (``python -m zoo.errors`` prints it; a test compares them)."""
    classes: list[type[ZooError]] = [ZooError, *(c for c in ZooError.__subclasses__() if "meaning" in vars(c))]
    rows = sorted({c.exit_code: c.meaning for c in classes}.items())
    return [(str(code), text) for code, text in rows] + [INTERRUPTED]


def exit_code_table() -> str:
    return "\n".join(["| exit | meaning |", "|---|---|", *(f"| {c} | {m} |" for c, m in exit_codes())])


# Older names, one meaning each.
BaseModelError = HubError
NotBuiltError = NotReadyError
CardError = UsageError
TaskDataError = UsageError
MissingVisionExtra = MissingExtraError


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A suffix like ``; did you mean 'gptq'?`` or the list of valid names when nothing is close; never the
    name itself (a caller whose only candidate is the name that failed says what is wrong instead)."""
    known = sorted(k for k in set(known) if k != name)
    if not known:
        return ""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if len(known) <= 12:
        return f"; choose one of: {', '.join(known)}"
    return ""


if __name__ == "__main__":
    print(exit_code_table())  # noqa: T201  (the README's table, regenerated)
