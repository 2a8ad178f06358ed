"""``zoo pull --unpack``: a packed release (#32) decoded to its standard 16-bit checkpoint, proven by the manifest.

A packed release's manifest (format 3) states ``unpacked_sha256``, the hash of the 16-bit tensors its packed
files decode to, inside the bytes a signature covers. Its config.json must record the same hash
(``check_packed``), and ``zoo.packed.store.unpack`` (what ``zoo unpack`` runs) refuses to write tensors that do
not hash to the config's: so what ``--unpack`` writes is proven against the (signed) manifest. Decoding reads
the verified files where they are (hard-linked into a view in staging), before any is moved into place, so a
mismatch keeps nothing. torch and safetensors are needed only here, and are checked before any download.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from zoo.errors import MissingExtraError, UsageError, VerifyError
from zoo.publish.manifest import MANIFEST, Manifest, check_packed_config
from zoo.publish.target import UNPACKED, Target
from zoo.untrusted import plain
from zoo.workdir import check_disk

log = logging.getLogger(__name__)


def check_installed() -> None:
    """Exit 6 before anything is downloaded when decoding is impossible here (the light install)."""
    import importlib.util

    for module in ("torch", "safetensors"):
        try:
            missing = importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise MissingExtraError(
                f"zoo pull --unpack decodes with torch ({module} is not installed); "
                "fix: pip install 'zoo[build]', or pull without --unpack"
            )


def check_unpackable(manifest: Manifest, source: str, outside: bool) -> None:
    """Before any weight is downloaded: only a packed release unpacks, and ``<target>/unpacked`` must be free."""
    if manifest.unpacked_sha256 is None:
        raise UsageError(
            f"{source} is not a packed release: its weights are a standard checkpoint already; nothing was written; "
            "fix: pull without --unpack / --unpack-to"
        )
    if not outside and any(e.path.split("/")[0].lower() == UNPACKED for e in manifest.entries):
        raise UsageError(
            f"{source} has files of its own under {UNPACKED}/; nothing was written; "
            "fix: pass --unpack-to with a new folder outside the pull's folder"
        )


def packed_paths(have: dict[str, Path]) -> list[str]:
    """The release's packed checkpoint files: build.json's ``packed_files`` (``check_build_json`` proved each
    is listed in the manifest with its hash)."""
    return [str(f["path"]) for f in json.loads(have["build.json"].read_bytes())["packed_files"]]


def check_packed(have: dict[str, Path], manifest: Manifest, source: str) -> None:
    """A packed release's checkpoint has a config.json that records the manifest's unpacked hash."""
    if "config.json" not in packed_paths(have):
        raise VerifyError(f"{source}: the packed checkpoint has no config.json; nothing was kept; fix: do not use this release")
    check_packed_config(have["config.json"].read_bytes(), manifest, source)


def _fake_bytes(have: dict[str, Path]) -> int:
    """About what the 16-bit checkpoint takes: build.json's ``files`` (the publisher's word, for a disk check)."""
    files = json.loads(have["build.json"].read_bytes()).get("files")
    sizes = [f.get("size") for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    return sum(s for s in sizes if isinstance(s, int) and s > 0)


def decode(t: Target, have: dict[str, Path], manifest: Manifest, source: str, outside: Path | None) -> Path:
    """The verified packed files decoded into ``outside`` (new or empty), or into staging for ``move_in`` to
    place as ``<target>/unpacked``; the folder decoded into. Nothing is written unless the tensors hash to
    ``manifest.unpacked_sha256``."""
    from zoo.packed.store import unpack

    view = t.staging / ".view"
    dst = outside if outside is not None else t.staging / f".{UNPACKED}"
    for d in (view, *(() if outside is not None else (dst,))):
        shutil.rmtree(d, ignore_errors=True)
    view.mkdir()
    try:
        for rel in packed_paths(have):
            p = view / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(have[rel], p)
            except OSError:
                shutil.copyfile(have[rel], p)
        where = dst.absolute().parent if outside is not None else t.staging
        check_disk(where, _fake_bytes(have) * 1.05, f"{source}'s 16-bit checkpoint", "--unpack-to")
        try:
            r: dict[str, Any] = unpack(view, dst)
        except VerifyError:
            raise VerifyError(
                f"{source}: the packed weights do not decode to the unpacked_sha256 of {MANIFEST}; nothing was kept; "
                "fix: do not use this release, and report it to the publisher"
            ) from None
        except (UsageError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise VerifyError(
                f"{source}: the packed checkpoint cannot be decoded ({plain(type(e).__name__)}: {plain(str(e), 200)}); "
                "nothing was kept; fix: do not use this release, and report it to the publisher"
            ) from None
    finally:
        shutil.rmtree(view, ignore_errors=True)
    log.info("%s: %d tensors decoded, sha256 %s as %s states", source, r["tensors"], r["unpacked_sha256"][:12], MANIFEST)
    return dst
