"""What every command prints: text (or a table), or with ``--json`` one JSON document, errors included.

A command hands its result to ``emit`` once. Under ``--json`` the document is held until the command
ends, so that a failure after it (a release with one failed recipe, ``validate`` with problems) still
leaves exactly one document on stdout: the result with ``error``, ``fix`` and ``exit`` added. A failure
before any result is ``{"error": ..., "fix": ..., "exit": N}``. Either way stderr keeps its ``error:``
lines and the exit code is the error class's, so a script reads stdout and a person reads stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from zoo.cli.table import table

FIX = "; fix: "


def to_json(obj: Any, line: bool = False) -> str:
    """Results (frozen dataclasses, paths, records) as JSON: indented, or one line with ``line``."""

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if hasattr(o, "to_json"):
            return o.to_json()
        raise TypeError(f"{type(o).__name__} is not JSON")

    return json.dumps(obj, default=default, indent=None if line else 2)


def _state() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, dict) else {}


def start(as_json: bool) -> None:
    """Called by ``errors`` before the command runs: which form its output takes."""
    state = _state()
    state["json"], state["held"] = as_json, None


def emit(data: Any, text: str | Callable[[], str] | None = None, *, line: bool = False) -> None:
    """The command's result: ``data`` as JSON under ``--json``; else ``text`` (a string, or a function
    computing it only when needed), or ``data``'s rows as a table when no text is given."""
    state = _state()
    if state.get("json"):
        state["held"] = (data, line)
        return
    if text is None:
        click.echo(table(data))
    else:
        click.echo(text() if callable(text) else text)


def finish() -> None:
    """Print the held JSON document of a command that succeeded."""
    held = _state().pop("held", None)
    if held is not None:
        click.echo(to_json(held[0], held[1]))


def split_fix(message: str) -> tuple[str, str | None]:
    """zoo's ``problem; fix: remedy`` as (problem, remedy); an unknown name's ``; did you mean 'x'?`` or
    ``; choose one of: ...`` is its remedy; None when the message has none."""
    for sep in (FIX, "; did you mean ", "; choose one of: "):
        problem, found, fix = message.partition(sep)
        if found:
            return problem, fix if sep == FIX else found.removeprefix("; ") + fix
    return message, None


def error_doc(message: str, code: int, problems: list[Any] | None = None) -> dict[str, Any]:
    """The JSON form of an error: its problem, its fix and the exit code; a recipe error adds each problem."""
    if problems:
        fixes = list(dict.fromkeys(str(p.fix) for p in problems if getattr(p, "fix", None)))
        lines = [line for line in message.splitlines() if not any(line == str(p) for p in problems)]
        own = [str(p).removesuffix(f" (fix: {p.fix})") if getattr(p, "fix", None) else str(p) for p in problems]
        return {"error": "\n".join(lines or own), "fix": "; ".join(fixes) or None, "exit": code, "problems": problems}
    problem, fix = split_fix(message)
    return {"error": problem, "fix": fix, "exit": code}


def report(message: str, code: int, problems: list[Any] | None = None, as_json: bool | None = None) -> None:
    """One ``error:`` line per line of ``message`` on stderr; under ``--json`` also the one document on stdout
    (the held result, if any, with the error added)."""
    from zoo.untrusted import plain

    for text in message.splitlines() or [message]:  # each line inert: a message may quote a server or a file
        click.echo(f"error: {plain(text, limit=2000)}", err=True)
    state = _state()
    if not (state.get("json") if as_json is None else as_json):
        return
    doc = error_doc(message, code, problems)
    held = state.pop("held", None)
    if held is not None:
        result = held[0]
        doc = {**result, **doc} if isinstance(result, dict) else {**doc, "result": result}
    click.echo(to_json(doc, line=held is None or held[1]))
    sys.stdout.flush()
