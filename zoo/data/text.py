"""Raw text of a dataset split, joined the way GPTQ's data utilities join it.

Hub datasets load through ``datasets`` (which caches them) on machines that reach the Hub; with no
network they raise a ``ZooError`` naming the dataset and the fix. ``pydoc`` and ``file`` never touch
the network. Every loader returns the text and an identity record for manifests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.data import DATASETS, DatasetSpec
from zoo.errors import UnknownNameError, ZooError

C4_VALIDATION_DOCS = 1100  # GPTQ's C4 evaluation subset


@dataclass(frozen=True)
class Text:
    text: str
    identity: dict[str, Any]


def _hub(spec: DatasetSpec, split: str) -> Text:
    from datasets import load_dataset

    files = {split: spec.data_files[split]} if split in spec.data_files else None
    config = None if files or spec.data_dir else spec.config  # read by file or folder: no builder config
    where = f"{spec.hub_id}" + (f"@{spec.revision}" if spec.revision else "")
    try:
        ds = load_dataset(spec.hub_id, config, data_files=files, data_dir=spec.data_dir, split=split, revision=spec.revision)
    except Exception as e:  # datasets raises many types for offline / missing / gated
        raise ZooError(
            f"cannot load dataset {spec.name!r} ({where}, split {split!r}): {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}; fix: run where the Hub is reachable (the datasets cache is "
            "reused afterwards), or use a local file (dataset: file, path: ...)"
        ) from e
    rows = ds[spec.column]
    if spec.name == "c4" and split == "validation":
        rows = rows[:C4_VALIDATION_DOCS]
    text = spec.joiner.join(rows)
    where_from = {"config": spec.config, "revision": spec.revision, "files": files, "data_dir": spec.data_dir}
    identity = {"source": spec.hub_id, **where_from, "commit": _commit(spec)}
    return Text(text, {**identity, "fingerprint": getattr(ds, "_fingerprint", None)})


def _commit(spec: DatasetSpec) -> str | None:
    """The commit the revision resolved to when the data was read, so a manifest pins what was measured
    even where the table names a branch; None when the Hub cannot say (offline, read from the cache)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        sha = HfApi().dataset_info(str(spec.hub_id), revision=spec.revision).sha
    except (HfHubHTTPError, OSError, ValueError):
        return None
    return str(sha) if sha else None


def _file(path: Path) -> Text:
    if not path.exists():
        raise ZooError(f"text file {path} does not exist; fix: give an existing .txt or .jsonl path")
    if path.suffix == ".jsonl":
        rows = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ZooError(f"{path}:{i}: expected a JSON object with a 'text' field; fix that line") from e
        return Text("\n\n".join(rows), {"source": str(path)})
    return Text(path.read_text(), {"source": str(path)})


def load_text(name: str, split: str, path: Path | None = None) -> Text:
    """The joined text of ``name``'s ``split`` with its identity (name, split, source, sha256)."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    if name == "pydoc":
        from zoo.tiny import corpus

        if split not in ("train", "test", "validation"):
            raise ZooError(f"dataset 'pydoc' has splits train and test, not {split!r}")
        t = Text(corpus.train_text() if split == "train" else corpus.heldout_text(), {"source": "pydoc_data.topics"})
    elif name == "file":
        if path is None:
            raise ZooError("dataset 'file' needs a path; fix: set calibration.path")
        t = _file(path)
    else:
        t = _hub(DATASETS[name], split)
    sha = hashlib.sha256(t.text.encode()).hexdigest()
    return Text(t.text, {"dataset": name, "split": split, **t.identity, "text_sha256": sha})
