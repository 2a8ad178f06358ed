"""The ``zoo`` command line: each command parses options, calls one library function, prints.

Here: the group, the shared options and the error handling; the commands live beside it by topic
(``catalog.py``: list/show/validate, ``stages.py``: build/eval/card, ``publish.py``: push/pull/
release/matrix). Adding a command: a function in the module of its topic, decorated with
``@cli.command`` and ``@errors``.

Errors from the library (``ZooError``) become one line on stderr and the class's exit code; the
library itself only logs (``-v`` shows it), it never prints. Every command prints through
``output.emit`` (text, table or ``--json``); under ``--json`` an error is one JSON document on stdout
too (``output.py``); click's own usage errors are reported the same way (``group.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from zoo import __version__
from zoo.cli import output
from zoo.cli.group import Choice, ZooGroup
from zoo.cli.output import emit, to_json
from zoo.errors import RecipeError, UsageError, ZooError

__all__ = ["Choice", "cli", "emit", "errors", "main", "to_json"]

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners send on cancel), unwound like Ctrl-C so staging folders are removed."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


# The group's options, accepted after the subcommand too (``zoo list -v`` as ``zoo -v list``).
LATE_OPTIONS = (
    click.option("--recipes", "late_recipes", type=click.Path(), help="Recipe catalog folder."),
    click.option("-v", "--verbose", "late_verbose", count=True, help="More logging (-vv: debug)."),
    click.option("-q", "--quiet", "late_quiet", is_flag=True, help="Only warnings and errors."),
)


def _late_globals(recipes: str | None, verbose: int, quiet: bool) -> None:
    obj = click.get_current_context().find_root().obj
    if recipes is not None:
        obj["recipes"] = recipes
    if verbose or quiet:
        configure_logging(obj.get("verbose", 0) + verbose, quiet or obj.get("quiet", False))


def errors(fn: F) -> F:
    """One ``error:`` line and the class's exit code for ``ZooError`` (under ``--json`` also the error's JSON
    document); Ctrl-C / SIGTERM likewise. Also gives the command the group's options, so they work before
    or after its name, and prints the JSON result the command emitted once it succeeded."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal

        _late_globals(kwargs.pop("late_recipes", None), kwargs.pop("late_verbose", 0), kwargs.pop("late_quiet", False))
        output.start(bool(kwargs.get("as_json")))

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            result = fn(*args, **kwargs)
        except ZooError as e:
            output.report(str(e), e.exit_code, e.problems if isinstance(e, RecipeError) else None)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            what = "terminated" if isinstance(e, Terminated) else "interrupted"
            output.report(
                f"{what}; nothing half-written was kept and earlier results are intact; fix: run the same command "
                "again (finished stages are skipped, LoRA training resumes from its last checkpoint)",
                143 if isinstance(e, Terminated) else 130,
            )
            sys.exit(143 if isinstance(e, Terminated) else 130)
        output.finish()
        return result

    for option in reversed(LATE_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


# What each heavy command imports, by the extra that installs it (``pip install 'zoo[build]'`` ...).
EXTRAS = {
    "build": ("torch", "transformers", "llmcompressor", "compressed_tensors", "accelerate", "datasets", "safetensors"),
    "eval": ("torch", "transformers", "lm_eval", "datasets"),
}


def require(command: str, *extras: str) -> None:
    """Exit 6 naming the extra when a command's dependencies are not installed (the base install lists,
    shows, validates, cards, pushes and pulls without them)."""
    import importlib.util

    for extra in extras:
        for module in EXTRAS[extra]:
            try:
                missing = importlib.util.find_spec(module) is None
            except (ImportError, ValueError):  # a module blocked or half-installed counts as missing
                missing = True
            if missing:
                from zoo.errors import MissingExtraError

                raise MissingExtraError(
                    f"zoo {command} needs the {extra} extra ({module} is not installed); fix: pip install 'zoo[{extra}]' "
                    "(or 'zoo[all]')"
                )
    from zoo.progress import quiet_backend_advice, quiet_bars, transient_bars

    quiet_backend_advice()  # before any backend is imported: advice that does not apply to zoo's runs

    # these commands run the backends, whose tqdm bars flood CI logs and leave blank lines on a terminal
    if sys.stderr.isatty():
        transient_bars()
    else:
        quiet_bars()


def catalog_root(ctx: click.Context) -> Path:
    from zoo.catalog import recipes_dir

    return recipes_dir(ctx.obj.get("recipes"))


workdir_option = click.option(
    "--workdir",
    type=click.Path(),  # a string: an empty one (an unset shell variable) is refused, not read as "."
    help="Where builds live (default: $ZOO_WORKDIR, or ./work when that is unset or empty); never the current folder "
    "or a checkout's root.",
)


def from_env(ctx: click.Context, param: str, var: str) -> str | None:
    """``VAR='value' (from the environment)`` when option ``param`` took its value from ``$VAR``, else None."""
    if ctx.get_parameter_source(param) is not click.core.ParameterSource.ENVIRONMENT:
        return None
    return f"{var}={os.environ.get(var, '')!r} (from the environment)"


@contextlib.contextmanager
def named(given: str | None) -> Iterator[None]:
    """Prefix a ``ZooError`` raised inside with where the bad value came from (an environment variable)."""
    try:
        yield
    except ZooError as e:
        if given and not isinstance(e, RecipeError):
            e.args = (f"{given}: {e}",)
        raise


def resolve_workdir(value: str | None) -> Path:
    """``--workdir``, else ``$ZOO_WORKDIR``, else ``./work`` (``zoo.workdir.workdir``), refusing an empty
    --workdir and a current folder or checkout root, and naming the variable when the value came from it."""
    from zoo.workdir import refuse_accidental, workdir

    env = os.environ.get("ZOO_WORKDIR")
    if value is not None and not value.strip():
        raise UsageError(
            f"--workdir {value!r} is empty (an unset shell variable?) and would build into the current folder; "
            "fix: pass --workdir with a folder, or leave it out for $ZOO_WORKDIR or ./work"
        )
    given = None if value is not None or not env else f"ZOO_WORKDIR={env!r} (from the environment)"
    with named(given):
        path = workdir(Path(value) if value is not None else None)
    if value is not None:
        refuse_accidental(path, f"--workdir {value}", "pass --workdir with a folder of its own, e.g. --workdir ./work")
    elif env:
        refuse_accidental(path, str(given), "set ZOO_WORKDIR to a folder of its own, e.g. ./work (or unset it)")
    return path


device_option = click.option(
    "--device",
    type=Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="Where to compute: auto takes CUDA when visible (else the CPU, for tiny bases only); cpu forces the CPU.",
)
JSON_HELP = "One JSON document on stdout instead of text; an error too ({error, fix, exit})."
json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)


host_memory_option = click.option(
    "--host-memory", type=click.FloatRange(min=0, min_open=True), help="GB of host RAM for weights; the rest spills to disk."
)


def gigabytes(value: float | None) -> int | None:
    """``--host-memory`` in bytes (None: no cap)."""
    return int(value * 1e9) if value else None


wait_option = click.option(
    "--wait", is_flag=True, help="If another zoo process holds this recipe, wait for it instead of exiting 12."
)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo")
@click.option(
    "--recipes",
    type=click.Path(),  # a string: an empty one (an unset shell variable) is refused, not read as "."
    help="Recipe catalog folder (default: $ZOO_RECIPES, else ./recipes, else the catalog zoo ships).",
)
@click.option("-v", "--verbose", count=True, help="More logging, backends' included (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, recipes: str | None, verbose: int, quiet: bool) -> None:
    """Build, evaluate, card and publish quantized LLaMA-3 / LLaVA-Next checkpoints from recipes."""
    configure_logging(verbose, quiet)
    # Backends (imported later, inside commands) read these once: keep their logs quiet unless asked,
    # and draw progress bars only on a terminal (tqdm itself is patched by ``require``, in the commands
    # that run backends, so that list/show/validate never import it).
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    ctx.obj = {"recipes": recipes, "verbose": verbose, "quiet": quiet}


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)  # fmt: skip
    logging.getLogger().setLevel(level)
    logging.getLogger("zoo").setLevel(logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO)
    noisy = logging.INFO if verbose else logging.ERROR  # lm-eval warns about its defaults; torch.fx about a rename
    logging.getLogger("lm_eval").setLevel(noisy)
    logging.getLogger("torch.fx._symbolic_trace").setLevel(noisy)
    if verbose:
        os.environ["LLM_COMPRESSOR_LOG_LEVEL"] = "INFO"
    else:
        os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "ERROR")


def main() -> None:
    """The console script: click's own usage errors become one ``error:`` line (exit 2), like zoo's
    (``ZooGroup.main``, which click's test runner calls too)."""
    cli.main(prog_name="zoo")


# registers the commands (plan: zoo plan and zoo baseline; serving: zoo bench; packed: zoo unpack)
from zoo.cli import catalog, export, packed, plan, publish, rehearse, serving, site, stages  # noqa: E402,F401
