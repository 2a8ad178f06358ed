"""What every Hub call of push and pull shares: names checked before use, timeouts, retries, errors.

Remote data is untrusted: a repo id, a tag or a path that reaches a URL or the filesystem is checked
first. huggingface_hub's shared HTTP client has no timeout by default, so a stalled server would hang
zoo forever; ``prepare`` gives every request ``ZOO_HUB_TIMEOUT`` seconds (default 60) to answer. Some
client calls retry a 429 themselves and others (the commit among them) do not, so ``call`` retries
each one on 429, honouring Retry-After, a bounded number of times. Failures become one-line errors:
401/403 are token problems (exit 9), the rest Hub problems (exit 5).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from zoo.errors import HubError, TokenError, UsageError, VerifyError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 60.0
DRY_RUN = "; `--dry-run` plans without the Hub"  # push and release have one; pull does not
RETRIES_429 = 5  # tries after the first one
MAX_WAIT_S = 120.0  # a longer Retry-After is not waited for
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_prepared: float | None = None


def timeout_s() -> float:
    """Seconds each Hub request may take to answer: ``$ZOO_HUB_TIMEOUT`` or 60."""
    raw = os.environ.get("ZOO_HUB_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise UsageError(
            f"ZOO_HUB_TIMEOUT={raw!r} (from the environment) is not a number of seconds; fix: set it to e.g. 60"
        ) from None
    if value <= 0:
        raise UsageError(f"ZOO_HUB_TIMEOUT={raw!r} (from the environment) must be positive; fix: set it to e.g. 60")
    return value


def prepare() -> float:
    """Give huggingface_hub's shared client and its download calls a timeout; returns it in seconds."""
    global _prepared
    seconds = timeout_s()
    if _prepared == seconds:
        return seconds
    import httpx
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    def factory() -> httpx.Client:
        return httpx.Client(
            event_hooks={"request": [hf_request_event_hook]}, follow_redirects=True, timeout=httpx.Timeout(seconds)
        )

    set_client_factory(factory)  # also closes a client made before, so the new timeout applies
    constants.HF_HUB_ETAG_TIMEOUT = int(max(1, seconds))
    constants.HF_HUB_DOWNLOAD_TIMEOUT = int(max(1, seconds))
    _prepared = seconds
    return seconds


def check_repo_id(repo_id: str) -> str:
    """``owner/name`` with the Hub's characters only, or a one-line usage error (before any request)."""
    parts = repo_id.split("/")
    ok = len(parts) == 2 and all(_NAME.fullmatch(p) and ".." not in p and "--" not in p for p in parts)
    if not ok or repo_id.endswith(".git"):
        raise UsageError(
            f"invalid repo id {repo_id!r}: it must be owner/name, each of letters, digits, '.', '-' or '_' "
            "(no '..' or '--', at most 96 characters); fix: pass --repo-id owner/name"
        )
    return repo_id


def check_branch(branch: str) -> str:
    """A branch name to commit to: plain segments only, never option-shaped."""
    if not branch or len(branch) > 200 or not all(_NAME.fullmatch(p) and ".." not in p for p in branch.split("/")):
        raise UsageError(f"invalid branch {branch!r}; fix: pass --revision with a branch name such as main")
    return branch


def check_commit(value: object, what: str) -> str:
    """A commit id a server sent: 40 lowercase hex, since it goes into URLs and records."""
    if not isinstance(value, str) or not _COMMIT.fullmatch(value):
        raise VerifyError(f"{what} is not a commit id ({str(value)[:60]!r}); fix: check the repo and HF_ENDPOINT")
    return value


RESERVED = {".zoo", ".cache", ".git"}  # zoo's and huggingface_hub's state in a pulled folder, and git's


def check_path(path: object, source: str) -> str:
    """A remote file path that is safe to join to a local folder: relative, normalized, plain.

    Rejects absolute and drive paths, backslashes, empty, ``.`` and ``..`` segments, control
    characters and the folders zoo, huggingface_hub and git keep state in."""
    bad = None
    if not isinstance(path, str) or not path:
        bad = "not a non-empty string"
    elif len(path) > 1000:
        bad = "longer than 1000 characters"
    elif any(ord(c) < 32 or ord(c) == 127 for c in path):
        bad = "has control characters"
    elif "\\" in path:
        bad = "has a backslash"
    elif path.startswith("/") or re.match(r"[A-Za-z]:", path):
        bad = "is absolute"
    else:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            bad = "is not a normalized relative path"
        elif parts[0].lower() in RESERVED or any(p.lower() == ".git" for p in parts):
            bad = "is inside a folder zoo reserves"
    if bad:
        raise VerifyError(f"unsafe path {str(path)[:200]!r} in {source}: it {bad}; nothing was written; fix: do not use it")
    return str(path)


def status_of(e: BaseException) -> int | None:
    """The HTTP status of a (possibly wrapped) Hub error."""
    for cause in chain(e):
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _retry_after(e: BaseException) -> float:
    response = getattr(e, "response", None)
    raw = getattr(response, "headers", {}).get("Retry-After", "") if response is not None else ""
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:  # the other form RFC 9110 allows: an HTTP date
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return 5.0


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried on HTTP 429 after the server's Retry-After (bounded)."""
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(RETRIES_429 + 1):
        try:
            return fn(*args, **kwargs)
        except HfHubHTTPError as e:
            if status_of(e) != 429 or attempt == RETRIES_429:
                raise
            wait = _retry_after(e)
            if wait > MAX_WAIT_S:
                raise
            log.warning("the Hub is rate limiting (HTTP 429); retrying in %.0fs (%d/%d)", wait, attempt + 1, RETRIES_429)
            time.sleep(wait)
    raise AssertionError("unreachable")


def timed_out(e: BaseException) -> bool:
    """Whether a (possibly wrapped) error is a request that got no answer in time."""
    import httpx

    return any(isinstance(cause, (httpx.TimeoutException, TimeoutError)) for cause in chain(e))


def endpoint() -> str:
    """The Hub endpoint as zoo stores and prints it: without userinfo (``HF_ENDPOINT=http://user:token@host``
    authenticates requests, and its secret must not reach a record, a card, a page or a log line)."""
    from huggingface_hub import constants

    from zoo.untrusted import redact_url

    return redact_url(constants.ENDPOINT)


def translate(e: BaseException, repo_id: str, action: str, fix: str, writing: bool) -> Exception:
    """The one-line zoo error for a failed Hub call (returned, for ``raise ... from None``)."""
    status = status_of(e)
    owner = repo_id.split("/")[0]
    if status == 401:
        if writing:
            return TokenError("the Hugging Face token was rejected (HTTP 401); fix: create a write token and set HF_TOKEN")
        return TokenError(
            "the Hugging Face token was rejected (HTTP 401); fix: set a valid HF_TOKEN, or unset it to pull public repos"
        )
    if status == 403:
        if writing:
            return TokenError(
                f"the Hugging Face token cannot write to {owner!r} (HTTP 403 while {action}); "
                f"fix: use a write token with access to {owner}, or --repo-id/--org with a namespace it can write"
            )
        return TokenError(f"the Hugging Face token may not read {repo_id} (HTTP 403); fix: use a token with access to it")
    if status == 429:
        return HubError(f"the Hub kept rate limiting {action} (HTTP 429); fix: wait a few minutes and re-run")
    if timed_out(e):
        return HubError(
            f"the Hub at {endpoint()} did not answer within {timeout_s():.0f}s while {action}; "
            f"fix: {fix} (or raise ZOO_HUB_TIMEOUT)"
        )
    if status is not None:
        from zoo.untrusted import plain

        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        return HubError(f"the Hub refused {action} (HTTP {status}: {plain(first.strip())}); fix: {fix}")
    if offline_mode(e):
        return HubError(
            f"HF_HUB_OFFLINE is set, so zoo may not contact the Hub while {action}; "
            "fix: unset HF_HUB_OFFLINE (or set it to 0) and re-run" + (DRY_RUN if writing else "")
        )
    if never_connected(e):
        return HubError(
            f"could not connect to the Hub at {endpoint()} while {action} ({type(chain(e)[-1]).__name__}); "
            "fix: check the network and HF_ENDPOINT, then re-run" + (DRY_RUN if writing else "")
        )
    return HubError(f"the connection to the Hub at {endpoint()} broke while {action} ({type(e).__name__}); fix: {fix}")


def chain(e: BaseException) -> list[BaseException]:
    """``e`` and what caused it, outermost first (huggingface_hub and httpx wrap one another)."""
    out: list[BaseException] = []
    cause: BaseException | None = e
    while cause is not None and len(out) < 20:
        out.append(cause)
        cause = cause.__cause__ or cause.__context__
    return out


def offline_mode(e: BaseException | None = None) -> bool:
    """Whether ``HF_HUB_OFFLINE`` is on (huggingface_hub then refuses every request), or ``e`` says so."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    return bool(constants.HF_HUB_OFFLINE) or (e is not None and any(isinstance(c, OfflineModeIsEnabled) for c in chain(e)))


def never_connected(e: BaseException) -> bool:
    """Whether no request reached the Hub at all (refused, unresolvable, offline), as opposed to a
    transfer that broke or an answer that said no: then nothing remote could be compared or changed."""
    import httpx

    if status_of(e) is not None:
        return False
    return offline_mode(e) or any(isinstance(c, (httpx.ConnectError, ConnectionRefusedError)) for c in chain(e))


def network_failure(e: BaseException) -> bool:
    """Whether an error came from the network or the Hub (huggingface_hub wraps some in RuntimeError)."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    return any(
        isinstance(cause, (httpx.HTTPError, OSError, HfHubHTTPError)) or type(cause).__name__.endswith("HTTPError")
        for cause in chain(e)
    )
