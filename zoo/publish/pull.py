"""``zoo pull``: what users run. Download a published variant and prove every byte is what was built.

After ``snapshot_download``, each checkpoint file is checked against the size and sha256 that the
published ``build.json`` lists; anything missing, different or unexpected is reported, corrupt
files are removed (so a re-run fetches them again), and the command fails.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UnknownNameError, VerifyError
from zoo.publish.push import HubError
from zoo.workdir import sha256_file

log = logging.getLogger(__name__)
METADATA = {"README.md", "build.json", "eval.json", "quality_vs_bits.png", ".gitattributes"}



@dataclass(frozen=True)
class PullResult:
    repo_id: str
    revision: str
    local_dir: Path
    files: int
    total_bytes: int


def repo_id_for(name: str, recipes: Path | None) -> str:
    """A repo id as given (owner/name), or the one a catalog recipe publishes to."""
    if "/" in name:
        return name
    from zoo.catalog import load, recipe_paths

    if recipes is None:
        raise UnknownNameError("recipe", name, [])
    try:
        return load(name, recipes).repo_id
    except UnknownNameError as e:
        raise UnknownNameError("recipe or repo id", name, [p.stem for p in recipe_paths(recipes)]) from e


def verify(local: Path) -> tuple[list[str], int]:
    """Problems found (one line each) and the verified bytes."""
    manifest = local / "build.json"
    if not manifest.exists():
        return [f"{local} has no build.json, so nothing can be verified; is this a zoo release?"], 0
    files = json.loads(manifest.read_text())["files"]
    problems, total = [], 0
    listed = {f["path"] for f in files}
    for f in files:
        p = local / f["path"]
        if not p.is_file():
            problems.append(f"missing: {f['path']}")
        elif p.stat().st_size != f["size"]:
            problems.append(f"corrupt: {f['path']} is {p.stat().st_size} bytes, build.json says {f['size']}")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"corrupt: {f['path']} sha256 differs from build.json")
        else:
            total += f["size"]
    for p in sorted(local.rglob("*")):
        rel = p.relative_to(local).as_posix()
        if p.is_file() and rel not in listed and rel not in METADATA and not rel.startswith((".cache/", ".eval_results/")):
            problems.append(f"extra: {rel} is not in build.json")
    return problems, total


def _forget(local: Path, rel: str) -> None:
    """Remove a bad file and the download cache's record of it, so a re-run downloads it again."""
    (local / rel).unlink(missing_ok=True)
    for meta in (local / ".cache" / "huggingface" / "download").glob(f"{rel}.*"):
        meta.unlink(missing_ok=True)


def pull(name: str, recipes: Path | None, revision: str | None = None, local_dir: Path | None = None) -> PullResult:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id = repo_id_for(name, recipes)
    local = Path(local_dir or repo_id.split("/")[-1])
    try:
        snapshot_download(repo_id, revision=revision, local_dir=local)
    except RevisionNotFoundError:
        raise HubError(f"revision {revision!r} not found in {repo_id}; fix: use a branch, tag or commit that exists") from None
    except RepositoryNotFoundError:
        raise HubError(f"{repo_id} not found on the Hub (or private); fix: check the name, or log in with access") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise HubError(
            f"download of {repo_id} failed: {type(e).__name__}; fix: check the network and re-run (it resumes)"
        ) from None
    problems, total = verify(local)
    if problems:
        for line in problems:
            kind, rel = line.split(": ", 1)
            if kind in ("corrupt", "extra"):
                _forget(local, rel.split(" ")[0])
        raise VerifyError(
            f"{repo_id}: {len(problems)} file(s) failed verification against build.json (bad files removed); "
            f"fix: re-run `zoo pull {name}`, and report it if it persists\n" + "\n".join(problems)
        )
    files = len(json.loads((local / "build.json").read_text())["files"])
    log.info("%s: %d files (%.1f MB) verified against build.json in %s", repo_id, files, total / 1e6, local)
    return PullResult(repo_id, revision or "main", local, files, total)
