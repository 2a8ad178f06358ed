"""The base loader every stage shares (build, eval, LoRA, bench, rehearse): a recipe's base model is
a Hub repo at its pinned revision, a local folder, or a built-in.

Hub bases download through ``snapshot_download`` into the normal HF cache, so the resolved commit is
known and recorded; ``trust_remote_code`` is never enabled. Weights load onto the host and, beyond
``host_memory`` bytes, onto disk (compressed-tensors' offloading), so a 70B build needs neither the
whole model in host RAM nor on the accelerator: the sequential pipeline onloads one layer at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import BaseModelError, UsageError, VerifyError
from zoo.untrusted import plain

if TYPE_CHECKING:
    from zoo.families.base import FamilySpec
    from zoo.recipe import Recipe

log = logging.getLogger(__name__)
# The license files a derivative must carry (Llama 3's license asks for LICENSE and the use policy).
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "USE_POLICY.md", "NOTICE", "NOTICE.md", "NOTICE.txt")
# README.md: the base's card, read only for its gating fields (``gating``)
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "README.md", *LICENSE_FILES]
GATING_PREFIX = "extra_gated_"
# Limits on the base's card (a Hub file): Meta's gating prompt, the whole license, is about 10 kB.
MAX_CARD_BYTES = 4 << 20  # read no more of README.md than this; the front matter opens it
MAX_FRONT_MATTER_BYTES = 256 << 10
MAX_CONFIG_BYTES = 32 << 20  # config.json / tokenizer_config.json (added tokens make the latter large)


def copy_license_files(base: Path, out: Path) -> list[str]:
    """The base's license files into the checkpoint folder (a release is a derivative of the base)."""
    import shutil

    from zoo.workdir import open_new

    copied = []
    for name in LICENSE_FILES:
        src = base / name
        if src.is_file() and not os.path.lexists(out / name):
            with src.open("rb") as f, open_new(out / name) as g:  # never through a link in the checkpoint folder
                shutil.copyfileobj(f, g)
            copied.append(name)
    return copied


def gating(base: Path) -> dict[str, Any]:
    """The base card's ``extra_gated_*`` fields (Meta's license prompt and form), which a derivative of
    a gated base mirrors: the same terms are accepted before its weights are downloaded. Empty when the
    base has no card, no front matter, or is not gated.

    The card comes from the base's repo, so its front matter is parsed within limits (no YAML aliases:
    a few hundred bytes of them expanded to megabytes of build.json and card), and what is mirrored is
    capped in size; past a limit the build stops (``VerifyError``): mirroring nothing would publish a
    gated base's derivative ungated."""
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    from zoo.parse import LimitError, check_gating, load_yaml

    card = base / "README.md"
    if not card.is_file():
        return {}
    where = f"the base's README.md ({plain(card)})"
    fix = "fix: use a base whose card front matter is plain YAML (no aliases), or a local copy (base.path) with a sane one"
    try:
        with card.open("rb") as f:
            head = f.read(MAX_CARD_BYTES + 1).decode("utf-8", "replace")
        match = REGEX_YAML_BLOCK.search(head)
        if match is None:
            if len(head) > MAX_CARD_BYTES and head.lstrip().startswith("---"):
                raise LimitError(f"front matter longer than {MAX_CARD_BYTES} bytes")
            return {}
        data = load_yaml(match.group(2), MAX_FRONT_MATTER_BYTES)
    except LimitError as e:
        raise VerifyError(f"{where} is over zoo's limits for data from outside: {e}; {fix}") from None
    except (ValueError, OSError, yaml.YAMLError) as e:  # a base card whose YAML does not parse: mirror nothing, say so
        log.warning("the base's README.md front matter does not parse (%s); its gating fields are not mirrored", plain(e))
        return {}
    if not isinstance(data, dict):
        return {}
    mirrored = {str(k): v for k, v in data.items() if str(k).startswith(GATING_PREFIX)}
    try:  # the same limits, on what build.json and the card will carry
        check_gating(mirrored)
    except LimitError as e:
        raise VerifyError(f"{where}: its {GATING_PREFIX}* fields are over zoo's limits ({e}); {fix}") from None
    return mirrored


# A base's config files that can name Python code in its repo for transformers to import.
CODE_CONFIGS = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def refuse_repository_code(path: Path, name: str) -> None:
    """Stop (one line, exit 2) when the base asks for code from its own repo (``auto_map``) or names a model
    type this transformers does not ship: zoo loads with ``trust_remote_code=False`` and never runs it, and
    transformers' refusal is otherwise a traceback minutes into a build."""
    from zoo.parse import LimitError, load_json

    for file in CODE_CONFIGS:
        p = path / file
        if not p.is_file():
            continue
        try:
            config = load_json(p.read_bytes(), MAX_CONFIG_BYTES)
        except (LimitError, ValueError, OSError) as e:
            raise VerifyError(
                f"base {plain(name)}: its {file} is unreadable ({plain(e)}); fix: point the recipe at a sound base"
            ) from None
        if not isinstance(config, dict):
            continue
        nested = [v for k, v in config.items() if k.endswith("_config") and isinstance(v, dict)]
        if any("auto_map" in c for c in (config, *nested)):
            raise UsageError(
                f"base {plain(name)} asks to run code from its repository (auto_map in {file}); zoo does not run "
                "repository code; fix: use a base whose architecture transformers ships"
            )
        if file == "config.json" and isinstance(config.get("model_type"), str):
            try:
                from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
            except ImportError:  # the light install downloads only; the stage that loads it checks again
                continue
            if config["model_type"] not in CONFIG_MAPPING_NAMES:
                raise UsageError(
                    f"base {plain(name)} has model type {plain(config['model_type'], 60)!r}, which transformers does not ship "
                    "(it would need the repository's code); zoo does not run repository code; fix: use a base whose "
                    "architecture transformers ships"
                )


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
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns or WEIGHT_PATTERNS))
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
    refuse_repository_code(path, repo_id)
    return path


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
        refuse_repository_code(path, str(path))
        gating(path)  # its limits, before hours of quantizing rather than after
        return BaseSource(path, {"path": str(path)})
    if b.repo_id is None:  # the schema requires exactly one of builtin, path, repo_id
        raise BaseModelError(f"{recipe.name}: the base names no repo_id, path or builtin; fix: set one of them")
    path = download(b.repo_id, b.revision)
    gating(path)
    return BaseSource(path, {"repo_id": b.repo_id, "revision": b.revision, "commit": path.name})


def load_model(source: BaseSource, family: FamilySpec, host_memory: int | None, offload_dir: Path) -> Any:
    """The model on the host, spilling to ``offload_dir`` past ``host_memory`` bytes."""
    import transformers
    from compressed_tensors.offload import load_offloaded_model

    auto = getattr(transformers, family.auto_class)
    kwargs: dict[str, Any] = {"dtype": "auto", "trust_remote_code": False}
    with _no_repository_code(source):
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
    with _no_repository_code(source):
        return auto.from_pretrained(source.path, trust_remote_code=False)


@contextlib.contextmanager
def _no_repository_code(source: BaseSource) -> Iterator[None]:
    """transformers' refusal to run a repo's code (a file ``refuse_repository_code`` does not read asked
    for it) as the same one line, not a traceback."""
    try:
        yield
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            raise
        name = source.identity.get("repo_id") or source.identity.get("path") or source.path
        raise UsageError(
            f"base {plain(name)} needs code from its repository to load (transformers: trust_remote_code); zoo does "
            "not run repository code; fix: use a base whose architecture transformers ships"
        ) from None
