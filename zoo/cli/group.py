"""click's own errors the way zoo reports its errors: one ``error: problem; fix: remedy`` line, exit 2,
and under ``--json`` the same one JSON document as a failing command prints.

``ZooGroup.main`` is what both the console script and click's test runner call, so the two report the
same way. A group-level option that only subcommands have (``zoo --json list``) is said to belong after
the command, rather than click's guess of the nearest group option (``--version``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from zoo.cli.output import report
from zoo.errors import did_you_mean


def wants_json(args: Sequence[str]) -> bool:
    """``--json`` among the options (before a ``--``), wherever it was put."""
    args = list(args)
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _commands(group: click.Group) -> dict[str, click.Command]:
    """Every command under ``group``, by path (``list``, ``collection sync``)."""
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.update({f"{name} {sub}": c for sub, c in _commands(command).items()})
        else:
            out[name] = command
    return out


def _misplaced(group: click.Group, option: str, args: Sequence[str]) -> str | None:
    """The message for a group-level option that belongs to a command, or None when no command has it."""
    owners = sorted(path for path, c in _commands(group).items() if any(option in p.opts for p in c.params))
    if not owners:
        return None
    named = next((a for a in args if a in group.commands), None)
    mine = [o for o in owners if named is not None and (o == named or o.startswith(f"{named} "))]
    if mine:
        return f"{option} is an option of the command, not of zoo; fix: put it after the command (zoo {mine[0]} {option})"
    nor = f" nor of {named}" if named else ""
    return (
        f"{option} is an option of {', '.join(owners)}, not of zoo{nor}; "
        f"fix: put it after one of those commands (zoo {owners[0]} {option})"
    )


# What people type for a choice zoo spells otherwise, where spelling alone would point elsewhere
# (``--device gpu`` is closest to ``cpu``).
ALIASES = {"gpu": "cuda", "nvidia": "cuda", "cuda:0": "cuda", "transformers": "hf", "huggingface": "hf"}


class Choice(click.Choice):  # type: ignore[type-arg]
    """click's choice, with zoo's did-you-mean when the value is close to one."""

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        alias = ALIASES.get(str(value).lower())
        hint = f"; did you mean {alias!r}?" if alias in self.choices else did_you_mean(str(value), [str(c) for c in self.choices])
        close = hint if hint.startswith("; did you mean") else ""
        return super().get_invalid_choice_message(value, ctx).rstrip(".") + close


class ZooGroup(click.Group):
    """The ``zoo`` group: click's usage errors reported as zoo's."""

    def main(  # type: ignore[override]  # one signature for both of click's overloads
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = wants_json(argv)
        try:
            rc = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `zoo` alone: the help, as click prints it (stderr, exit 2)
            e.show()
            sys.exit(2)
        except click.UsageError as e:
            message = None
            if isinstance(e, click.NoSuchOption) and e.ctx is not None and e.ctx.command is self:
                message = _misplaced(self, e.option_name, argv)
            if message is None:
                where = e.ctx.command_path if e.ctx else "zoo"
                message = f"{e.format_message().rstrip('.')}; fix: see `{where} --help`"
            report(message, 2, as_json=as_json)
            sys.exit(2)
        except click.ClickException as e:
            report(e.format_message(), e.exit_code, as_json=as_json)
            sys.exit(e.exit_code)
        except click.Abort:
            report("interrupted; fix: run the same command again", 130, as_json=as_json)
            sys.exit(130)
        if not standalone_mode:
            return rc
        sys.exit(rc if isinstance(rc, int) else 0)
