"""vLLM as a serving runtime, run in its own venv and its own process group.

vLLM pins transformers and compressed-tensors versions zoo's venv does not have, so it runs as a
separate process: ``ZOO_VLLM_PYTHON`` (a venv's python with vLLM installed), else this python when
``vllm`` imports here. That process runs ``vllm_child.py`` on one model and answers in JSON lines on
stdout. It is started in a new session (its own process group) and the whole group is ended when the
answer is in, on a timeout, or when zoo itself is interrupted: vLLM starts helper processes that
would otherwise outlive it holding gigabytes. The engine runs in that one process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so a refusal is vLLM's own exception, not "engine core failed".
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.untrusted import plain

log = logging.getLogger(__name__)
CHILD = Path(__file__).with_name("vllm_child.py")
ENV = "ZOO_VLLM_PYTHON"
TIMEOUT_S = 900.0  # one engine start and the measurements; a CPU start of a tiny model takes about 10 s
KV_CACHE_GB = 1  # the same fixed KV-cache pool on CPU and GPU, so peak memory compares across builds


def python() -> str | None:
    """vLLM's python: ``$ZOO_VLLM_PYTHON``, else this interpreter when vLLM imports here, else None."""
    given = os.environ.get(ENV, "").strip()
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UsageError(
                f"{ENV}={plain(given)!r} is not an executable python; fix: point it at a venv's bin/python with vLLM "
                f"installed (docs/serving.md), or unset it"
            )
        return str(path)
    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        found = False
    return sys.executable if found else None


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's whole process group, SIGKILL to whatever is left 10 s later."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _last_words(log_file: Path) -> str:
    lines = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or ["(no output)"])[-1]


def run(vllm_python: str, job: dict[str, Any], timeout_s: float = TIMEOUT_S) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(hello, results): the runtime's version and device, then one result per model in ``job["models"]``.
    A model the process never answered for (a crash, a timeout) gets status ``failed`` and the reason."""
    env = dict(os.environ)
    env.update(
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        VLLM_CPU_KVCACHE_SPACE=str(KV_CACHE_GB),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        PYTHONNOUSERSITE="1",
    )
    env.pop("PYTHONPATH", None)  # zoo's own packages must not shadow the venv's transformers
    job = {**job, "kv_cache_bytes": KV_CACHE_GB << 30}
    talk = converse(vllm_python, CHILD, job, env, timeout_s, "zoo-vllm-")
    answers, why = talk.answers, None
    if talk.timed_out:
        why = f"no answer within {timeout_s:.0f} s; its process group was ended"
    elif talk.returncode not in (0, -signal.SIGTERM):
        why = f"exited with code {talk.returncode}: {talk.last_words}"
    elif len(answers) < 1 + len(job["models"]):
        why = f"stopped without an answer: {talk.last_words}"
    if why is not None:
        log.debug("vLLM's stderr:\n%s", talk.stderr_tail)
    hello = answers[0] if answers and answers[0].get("hello") else {}
    results = [a for a in answers if "role" in a]
    answered = {a["role"] for a in results}
    for spec in job["models"]:
        if spec["role"] not in answered:
            results.append({"model": spec["model"], "role": spec["role"], "status": "failed", "reason": why or "no answer"})
    return hello, results


@dataclass(frozen=True)
class Conversation:
    """What one child said: its JSON-object lines in order, and how it ended."""

    answers: list[dict[str, Any]]
    timed_out: bool
    returncode: int | None
    last_words: str  # the last error-looking line of its stderr
    stderr_tail: str


def converse(python: str, child: Path, job: dict[str, Any], env: dict[str, str], timeout_s: float, prefix: str) -> Conversation:
    """``job`` as JSON to ``child`` run by ``python`` in a process group of its own (ended whatever happens: on an
    answer, a timeout or Ctrl-C alike, so no engine worker outlives it), in a temporary working folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        err = Path(tmp) / "stderr.log"
        with err.open("wb") as err_f:
            proc = subprocess.Popen(
                [python, "-I", str(child)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_f,
                env=env, cwd=tmp, start_new_session=True,
            )  # fmt: skip
            timed_out = False
            try:
                out, _ = proc.communicate(json.dumps(job).encode(), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out, out = True, b""
            finally:
                _end_group(proc)  # every helper it started
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        answers = []
        for line in out.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    answers.append(value)
        return Conversation(answers, timed_out, proc.returncode, _last_words(err), err.read_text(errors="replace")[-8000:])
