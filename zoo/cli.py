"""The ``zoo`` command line: each command parses options, calls one library function, prints.

Errors from the library (``ZooError``) become one line on stderr and the class's exit code; the
library itself only logs (``-v`` shows it), it never prints.
"""

from __future__ import annotations

import dataclasses
import json
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


def _errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal

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

    return wrapper  # type: ignore[return-value]


def _root(ctx: click.Context) -> Path:
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
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("zoo").setLevel(logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO)
    if not verbose:  # lm-eval warns about its own defaults on every run; torch.fx about an API rename
        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    # Backends (imported later, inside commands) read these once: keep their logs quiet unless asked,
    # and draw progress bars only on a terminal.
    os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "INFO" if verbose else "ERROR")
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from zoo.progress import bars_to_log

        bars_to_log()
    ctx.obj = {"recipes": recipes}


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no recipes match)"
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


@cli.command("list")
@click.option("--family", help="llama3, llava-next, or a base such as llama3-70b / tiny-llama3.")
@click.option("--method", help="rtn, gptq, awq, smoothquant, quip, pbllm, billm, dbllm, slimllm, qlora, irqlora.")
@click.option("--bits", type=float, help="Weight bits, e.g. 4 or 1.1.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.pass_context
@_errors
def list_cmd(ctx: click.Context, family: str | None, method: str | None, bits: float | None, as_json: bool) -> None:
    """The catalog, with which recipes can be built now."""
    from zoo.catalog import entries

    rows = [dataclasses.asdict(e) for e in entries(_root(ctx), family, method, bits)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["buildable"] = "yes" if r["buildable"] else "no"
    click.echo(_table(rows))


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
@click.pass_context
@_errors
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """The fully resolved recipe NAME: inherited values and method defaults filled in."""
    import yaml

    from zoo.catalog import load

    data = load(name, _root(ctx)).model_dump(mode="json")
    click.echo(json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False).rstrip())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Also require what a release needs: Hub bases pinned to a commit.")
@click.pass_context
@_errors
def validate(ctx: click.Context, paths: tuple[Path, ...], strict: bool) -> None:
    """Check recipe files (default: the whole catalog) and report every problem at once (exit 2 if any)."""
    from zoo.catalog import base_paths, recipe_paths
    from zoo.catalog import validate as check

    if not paths:
        root = _root(ctx)
        paths = (*base_paths(root), *recipe_paths(root))
    problems = check(list(paths), strict)
    for p in problems:
        click.echo(str(p), err=True)
    bad = len({os.path.realpath(p.file) for p in problems})
    if problems:
        click.echo(f"{len(problems)} problem(s) in {bad} of {len(paths)} file(s)", err=True)
        sys.exit(2)
    click.echo(f"{len(paths)} file(s) valid")


@cli.command("build")
@click.argument("name")
@workdir_option
@device_option
@click.option("--force", is_flag=True, help="Rebuild even if an identical build is finished.")
@click.option(
    "--host-memory", type=click.FloatRange(min=0, min_open=True), help="GB of host RAM for weights; the rest spills to disk."
)
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line.")
@click.pass_context
@_errors
def build_cmd(
    ctx: click.Context,
    name: str,
    workdir: Path | None,
    device: str,
    force: bool,
    host_memory: float | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Quantize recipe NAME into <workdir>/NAME/model with a build.json manifest."""
    from zoo.build import build
    from zoo.catalog import load
    from zoo.workdir import workdir as default_workdir

    root = _root(ctx)
    memory = int(host_memory * 1e9) if host_memory else None
    result = build(load(name, root), default_workdir(workdir), root, device, force, memory, wait)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        verb = "already built" if result.status == "skipped" else f"built in {result.seconds:.1f}s"
        click.echo(f"{result.name}: {verb}: {result.model_dir} ({result.total_bytes / 1e6:.1f} MB)")


@cli.command("eval")
@click.argument("name")
@workdir_option
@device_option
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per task and N perplexity windows (recorded as such).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Items per forward pass.")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True, help="lm-eval model backend.")
@click.option("--force", is_flag=True, help="Re-measure even if eval.json is current.")
@click.option("--allow-regression", is_flag=True, help="Exit 0 even when the recovery gate fails.")
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary line.")
@click.pass_context
@_errors
def eval_cmd(
    ctx: click.Context,
    name: str,
    workdir: Path | None,
    device: str,
    limit: int | None,
    batch_size: int,
    backend: str,
    force: bool,
    allow_regression: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Measure built recipe NAME and its 16-bit base; write <workdir>/NAME/eval.json."""
    from zoo.catalog import load
    from zoo.evaluation.run import evaluate
    from zoo.workdir import workdir as default_workdir

    root = _root(ctx)
    r = evaluate(
        load(name, root), default_workdir(workdir), root, device, limit, batch_size, force, allow_regression, backend, wait
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": r.name,
                    "status": r.status,
                    "eval_json": str(r.eval_json),
                    "metrics": r.metrics,
                    "recovery": r.recovery,
                    "gate_failed": list(r.gate_failed),
                }
            )
        )
        return
    data = json.loads(r.eval_json.read_text())
    base = data["baseline"]["metrics"]
    rows = [
        {"metric": k, "base": base.get(k), name: v, "recovery %": "n/a: base is 0" if base.get(k) == 0 else r.recovery.get(k)}
        for k, v in r.metrics.items()
    ]
    click.echo(_table(rows))
    if r.gate_failed:
        click.echo(f"gate failed (allowed): {'; '.join(r.gate_failed)}", err=True)


@cli.command("card")
@click.argument("name")
@workdir_option
@click.option("--force", is_flag=True, help="Render even if the card is current.")
@wait_option
@click.pass_context
@_errors
def card_cmd(ctx: click.Context, name: str, workdir: Path | None, force: bool, wait: bool) -> None:
    """Render the model card of NAME into <workdir>/NAME/card/ (README.md, plot, eval results)."""
    from zoo.card import render
    from zoo.catalog import load, recipe_paths
    from zoo.recipe import load_recipe
    from zoo.workdir import workdir as default_workdir

    root = _root(ctx)
    catalog = [load_recipe(p) for p in recipe_paths(root)]
    result = render(load(name, root), catalog, default_workdir(workdir), force, wait=wait)
    click.echo(f"{result.name}: card {result.status}: {result.readme}")


@cli.command("push")
@click.argument("name")
@workdir_option
@click.option("--repo-id", help="Hub repo (default: the recipe's, {org}/{name}).")
@click.option("--org", envvar="ZOO_HUB_ORG", help="Hub org for the default repo id (env ZOO_HUB_ORG).")
@click.option("--private/--public", default=None, help="Visibility of a new repo (default: the recipe's).")
@click.option("--revision", default="main", show_default=True, help="Branch to commit to.")
@click.option("--dry-run", is_flag=True, help="List what would change; upload nothing. Needs no token (compares anonymously).")
@click.pass_context
@_errors
def push_cmd(
    ctx: click.Context,
    name: str,
    workdir: Path | None,
    repo_id: str | None,
    org: str | None,
    private: bool | None,
    revision: str,
    dry_run: bool,
) -> None:
    """Publish built recipe NAME (checkpoint, card, build.json, eval.json) to the Hub."""
    from zoo.catalog import load
    from zoo.publish.hub import check_repo_id
    from zoo.publish.push import push
    from zoo.workdir import workdir as default_workdir

    if repo_id is not None:
        check_repo_id(repo_id)  # before anything else, and before any network call
    recipe = load(name, _root(ctx))
    repo = repo_id or (check_repo_id(f"{org}/{recipe.name}") if org else None)
    r = push(recipe, default_workdir(workdir), repo, private, revision, dry_run)
    if r.status == "dry-run":
        for p in r.changed:
            click.echo(f"would upload  {p}")
        for p in r.deleted:
            click.echo(f"would delete  {p}")
        note = f" ({r.note})" if r.note else ""
        click.echo(
            f"{r.repo_id}@{r.revision}: {len(r.changed)} to upload, {len(r.deleted)} to delete, {r.unchanged} unchanged; "
            f"tag {r.tag}{note}"
        )
    elif r.status == "unchanged":
        click.echo(f"{r.repo_id}@{r.revision}: already up to date ({r.unchanged} files); no commit made; tag {r.tag}")
    else:
        click.echo(f"{r.repo_id}@{r.revision}: pushed {len(r.changed)} file(s) in commit {r.commit}; tag {r.tag}")


@cli.command("pull")
@click.argument("name")
@click.option("--revision", help="Branch, tag or commit (default: the newest release tag on main).")
@click.option("--local-dir", type=click.Path(path_type=Path), help="Where to put the files (default: ./<repo name>).")
@click.option(
    "--force", is_flag=True, help="Pull into a folder holding other files; only the files the release lists are overwritten."
)
@click.pass_context
@_errors
def pull_cmd(ctx: click.Context, name: str, revision: str | None, local_dir: Path | None, force: bool) -> None:
    """Download NAME (a recipe name or owner/repo) and verify every file against the release manifest."""
    from zoo.catalog import recipes_dir
    from zoo.publish.pull import pull

    try:
        root: Path | None = recipes_dir(ctx.obj.get("recipes"))
    except ZooError:
        root = None  # users without a checkout pull by repo id
    r = pull(name, root, revision, local_dir, force)
    click.echo(
        f"{r.repo_id}@{r.revision} (commit {r.commit}): {r.files} files ({r.total_bytes / 1e6:.1f} MB) verified in {r.local_dir}"
    )


@cli.command("release")
@click.argument("names", nargs=-1, required=True)
@workdir_option
@device_option
@click.option("--limit", type=int, help="Quick evaluation: at most N items per task (recorded in the card).")
@click.option("--dry-run", is_flag=True, help="Build, evaluate and card, but only list what push would upload (needs no token).")
@click.pass_context
@_errors
def release_cmd(
    ctx: click.Context, names: tuple[str, ...], workdir: Path | None, device: str, limit: int | None, dry_run: bool
) -> None:
    """build -> eval -> card -> push for each NAME; finished stages are skipped; exit 1 if any failed."""
    from zoo.publish.release import release
    from zoo.workdir import workdir as default_workdir

    outcomes = release(list(names), _root(ctx), default_workdir(workdir), device, limit, dry_run)
    rows = [
        {"recipe": o.name, **{s: o.stages.get(s, "") for s in ("build", "eval", "card", "push")}, "error": o.error}
        for o in outcomes
    ]
    click.echo(_table(rows))
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        click.echo(f"error: {len(failed)} of {len(outcomes)} release(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


@cli.command("matrix")
@click.option("--changed-since", help="Only recipes whose file, or a file they extend, changed since this git ref.")
@click.option("--family", help="llama3, llava-next, or a base such as llama3-70b.")
@click.option("--method", help="A method name, e.g. gptq.")
@click.pass_context
@_errors
def matrix_cmd(ctx: click.Context, changed_since: str | None, family: str | None, method: str | None) -> None:
    """The recipes as a GitHub Actions matrix (JSON), with runner labels by memory need."""
    from zoo.publish.matrix import matrix

    click.echo(json.dumps(matrix(_root(ctx), changed_since, family, method)))


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
