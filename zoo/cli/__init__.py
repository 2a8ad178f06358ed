"""The ``zoo`` command line: each command parses options, calls one library function, prints.

Here: the group, the shared options and the error handling; the commands live beside it by topic
(``catalog.py``: list/show/validate, ``stages.py``: build/eval/card, ``publish.py``: push/pull/
release/matrix). Adding a command: a function in the module of its topic, decorated with
``@cli.command`` and ``@errors``.

Errors from the library (``ZooError``) become one line on stderr and the class's exit code; the
library itself only logs (``-v`` shows it), it never prints.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from zoo import __version__
from zoo.errors import ZooError

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners send on cancel), unwound like Ctrl-C so staging folders are removed."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


# The group's options, accepted after the subcommand too (``zoo list -v`` as ``zoo -v list``).
LATE_OPTIONS = (
    click.option("--recipes", "late_recipes", type=click.Path(path_type=Path), help="Recipe catalog folder."),
    click.option("-v", "--verbose", "late_verbose", count=True, help="More logging (-vv: debug)."),
    click.option("-q", "--quiet", "late_quiet", is_flag=True, help="Only warnings and errors."),
)


def _late_globals(recipes: Path | None, verbose: int, quiet: bool) -> None:
    obj = click.get_current_context().find_root().obj
    if recipes is not None:
        obj["recipes"] = recipes
    if verbose or quiet:
        configure_logging(obj.get("verbose", 0) + verbose, quiet or obj.get("quiet", False))


def errors(fn: F) -> F:
    """One ``error:`` line and the class's exit code for ``ZooError``; Ctrl-C / SIGTERM likewise.
    Also gives the command the group's options, so they work before or after its name."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal

        _late_globals(kwargs.pop("late_recipes", None), kwargs.pop("late_verbose", 0), kwargs.pop("late_quiet", False))

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return fn(*args, **kwargs)
        except ZooError as e:
            for line in str(e).splitlines():
                click.echo(f"error: {line}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            what = "terminated" if isinstance(e, Terminated) else "interrupted"
            click.echo(
                f"error: {what}; nothing half-written was kept and earlier results are intact; fix: run the same command "
                "again (finished stages are skipped, LoRA training resumes from its last checkpoint)",
                err=True,
            )
            sys.exit(143 if isinstance(e, Terminated) else 130)

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
    from zoo.progress import quiet_bars, transient_bars

    # these commands run the backends, whose tqdm bars flood CI logs and leave blank lines on a terminal
    if sys.stderr.isatty():
        transient_bars()
    else:
        quiet_bars()


def catalog_root(ctx: click.Context) -> Path:
    from zoo.catalog import recipes_dir

    return recipes_dir(ctx.obj.get("recipes"))


workdir_option = click.option(
    "--workdir", type=click.Path(path_type=Path), help="Where builds live (default: $ZOO_WORKDIR or ./work)."
)
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="Where to compute: auto takes CUDA when visible (else the CPU, for tiny bases only); cpu forces the CPU.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout instead of text.")


def to_json(obj: Any) -> str:
    """Results (frozen dataclasses, paths, records) as the JSON that ``--json`` prints."""
    import dataclasses
    import json

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        raise TypeError(f"{type(o).__name__} is not JSON")

    return json.dumps(obj, default=default, indent=2)


wait_option = click.option(
    "--wait", is_flag=True, help="If another zoo process holds this recipe, wait for it instead of exiting 12."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo")
@click.option("--recipes", type=click.Path(path_type=Path), help="Recipe catalog folder (default: ./recipes).")
@click.option("-v", "--verbose", count=True, help="More logging, backends' included (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, recipes: Path | None, verbose: int, quiet: bool) -> None:
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
    """The console script: click's own usage errors become one ``error:`` line (exit 2), like zoo's."""
    try:
        rc = cli.main(prog_name="zoo", standalone_mode=False)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx else "zoo"
        click.echo(f"error: {e.format_message().rstrip('.')}; fix: see `{where} --help`", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("error: interrupted; fix: run the same command again", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


from zoo.cli import catalog, publish, rehearse, site, stages  # noqa: E402,F401  (registers the commands)
