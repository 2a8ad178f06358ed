"""Loading a recipe's base model: a Hub repo at its pinned revision, a local folder, or a built-in.

Hub bases download through ``snapshot_download`` into the normal HF cache, so the resolved commit is
known and recorded; ``trust_remote_code`` is never enabled. Weights load onto the host and, beyond
``host_memory`` bytes, onto disk (compressed-tensors' offloading), so a 70B build needs neither the
whole model in host RAM nor on the accelerator: the sequential pipeline onloads one layer at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import BaseModelError

if TYPE_CHECKING:
    from zoo.families.base import FamilySpec
    from zoo.recipe import Recipe

log = logging.getLogger(__name__)
# The license files a derivative must carry (Llama 3's license asks for LICENSE and the use policy).
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "USE_POLICY.md", "NOTICE", "NOTICE.md", "NOTICE.txt")
# README.md: the base's card, read only for its gating fields (``gating``)
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "README.md", *LICENSE_FILES]
GATING_PREFIX = "extra_gated_"


def copy_license_files(base: Path, out: Path) -> list[str]:
    """The base's license files into the checkpoint folder (a release is a derivative of the base)."""
    import shutil

    copied = []
    for name in LICENSE_FILES:
        src = base / name
        if src.is_file() and not (out / name).exists():
            shutil.copyfile(src, out / name)
            copied.append(name)
    return copied


def gating(base: Path) -> dict[str, Any]:
    """The base card's ``extra_gated_*`` fields (Meta's license prompt and form), which a derivative of
    a gated base mirrors: the same terms are accepted before its weights are downloaded. Empty when the
    base has no card, no front matter, or is not gated."""
    card = base / "README.md"
    if not card.is_file():
        return {}
    import yaml
    from huggingface_hub.repocard import metadata_load

    try:
        data = metadata_load(card) or {}
    except (ValueError, OSError, yaml.YAMLError) as e:  # a base card whose YAML does not parse: mirror nothing, say so
        log.warning("the base's README.md front matter does not parse (%s); its gating fields are not mirrored", e)
        return {}
    return {k: v for k, v in data.items() if k.startswith(GATING_PREFIX)}


@dataclass(frozen=True)
class BaseSource:
    path: Path
    identity: dict[str, Any]


def download(repo_id: str, revision: str | None, patterns: list[str] | None = None) -> Path:
    """The base's files at ``revision`` (``patterns``: which; default its weights and small files),
    with one-line errors for gated / missing / offline."""
    import httpx
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}"
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns or WEIGHT_PATTERNS))
    except GatedRepoError as e:
        raise BaseModelError(
            f"base model {repo_id} is gated; fix: accept its license on the Hub, then `hf auth login` or set HF_TOKEN"
        ) from e
    except RevisionNotFoundError as e:
        raise BaseModelError(f"revision {revision!r} not found in {repo_id}; fix: correct base.revision") from e
    except RepositoryNotFoundError as e:
        raise BaseModelError(
            f"base model {repo_id} not found (or private); fix: correct base.repo_id, or log in with access"
        ) from e
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", "?")
        raise BaseModelError(
            f"the Hub refused {where} (HTTP {status}); fix: check base.repo_id / revision and your token's access"
        ) from None
    except (LocalEntryNotFoundError, httpx.HTTPError, OSError) as e:
        raise BaseModelError(
            f"cannot reach the Hub for {where} ({type(e).__name__}) and it is not in the HF cache; "
            "fix: run where the Hub is reachable once, or point base.path at a local copy"
        ) from None


def resolve(recipe: Recipe, recipe_dir: Path) -> BaseSource:
    """Where the base's files are on this machine, and what exactly they are."""
    from zoo.tiny.bases import builtin_path

    b = recipe.base
    if b.builtin:
        path = builtin_path(b.builtin)
        from zoo.workdir import sha256_file

        return BaseSource(path, {"builtin": b.builtin, "weights_sha256": sha256_file(path / "model.safetensors")})
    if b.path:
        path = (recipe_dir / b.path).expanduser()
        if not (path / "config.json").exists():
            raise BaseModelError(f"local base {path} has no config.json; fix: base.path must be a saved model folder")
        return BaseSource(path, {"path": str(path)})
    if b.repo_id is None:  # the schema requires exactly one of builtin, path, repo_id
        raise BaseModelError(f"{recipe.name}: the base names no repo_id, path or builtin; fix: set one of them")
    path = download(b.repo_id, b.revision)
    return BaseSource(path, {"repo_id": b.repo_id, "revision": b.revision, "commit": path.name})


def load_model(source: BaseSource, family: FamilySpec, host_memory: int | None, offload_dir: Path) -> Any:
    """The model on the host, spilling to ``offload_dir`` past ``host_memory`` bytes."""
    import transformers
    from compressed_tensors.offload import load_offloaded_model

    auto = getattr(transformers, family.auto_class)
    kwargs: dict[str, Any] = {"dtype": "auto", "trust_remote_code": False}
    if host_memory is None:
        model = auto.from_pretrained(source.path, **kwargs)
    else:
        offload_dir.mkdir(parents=True, exist_ok=True)
        kwargs.update(device_map="auto", max_memory={"cpu": host_memory}, offload_folder=str(offload_dir))
        with load_offloaded_model(auto):
            model = auto.from_pretrained(source.path, **kwargs)
    return model.eval()


def load_processor(source: BaseSource, family: FamilySpec) -> Any:
    """The tokenizer, or the processor (tokenizer + image processor) for multimodal families."""
    import transformers

    auto = transformers.AutoProcessor if family.multimodal else transformers.AutoTokenizer
    return auto.from_pretrained(source.path, trust_remote_code=False)
