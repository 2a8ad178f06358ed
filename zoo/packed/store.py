"""The packed checkpoint on disk: written beside the fake one at build time, unpacked by ``zoo unpack``.

A build of a native method writes ``<workdir>/<name>/packed/``: ``config.json`` whose ``quantization_config``
names zoo's format (``docs/packed.md``) and holds each Linear's decoding spec, the safetensors of every tensor
that is not a quantized Linear weight (embeddings, norms, lm_head, in 16 bits) next to each Linear's packed
tensors (``<module>.<tensor>``), and the tokenizer and license files of ``model/``. ``unpacked_sha256`` is the
hash of the fake checkpoint's tensors (``state_sha256``): unpacking must reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from zoo.packed import FORMAT, READS, VERSION, codec

log = logging.getLogger(__name__)

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
SKIP = {"config.json", "quantization.json"}


def hold(layout: dict[str, Any], w16: Any, q32: Any) -> Any:
    """What a Linear keeps until the checkpoint is saved: its encoding now (the fp32 result is at hand only now),
    or, for a method that changes the weight later (``"final"``: DB-LLM's distillation), its layout."""
    if layout.get("final"):
        return layout
    return codec.encode(layout, w16, q32)


def state_sha256(tensors: dict[str, Any]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, by name: what two checkpoints share if their
    tensors are bit-identical, whatever their files' headers say."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_folder(folder: Path) -> dict[str, Any]:
    """Every tensor of the safetensors files in ``folder``."""
    from safetensors.torch import load_file

    tensors: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    return tensors


def partial_for(out: Path) -> Path:
    """Where a build whose fake checkpoint goes to ``out`` writes its packed one (a partial the build adopts)."""
    return out.parent / f".packed.partial-{out.name}"


def write(out: Path, model: Any, record: dict[str, Any]) -> Path | None:
    """The packed checkpoint of ``model`` (its Linears carrying ``_zoo_packed``), beside the fake one in ``out``."""
    from huggingface_hub import save_torch_state_dict

    fake = load_folder(out)
    linears: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    for name, module in model.named_modules():
        held = getattr(module, "_zoo_packed", None)
        if held is None:
            continue
        del module._zoo_packed
        if f"{name}.weight" not in fake:
            log.warning("%s: no %s.weight in the saved checkpoint; no packed form", out, name)
            return None
        w16 = fake[f"{name}.weight"]
        spec, t = held if isinstance(held, tuple) else codec.encode(held, w16)
        spec["tensors"] = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in t.items()}
        linears[name] = spec
        tensors.update({f"{name}.{k}": v for k, v in t.items()})
    if not linears:
        return None
    tensors.update({k: v for k, v in fake.items() if k.removesuffix(".weight") not in linears})
    dest = partial_for(out)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    save_torch_state_dict(tensors, str(dest), max_shard_size="4GB")
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "zoo", "format": FORMAT, "version": VERSION, **record,
        "unpacked_sha256": state_sha256(fake), "linears": linears,
    }  # fmt: skip
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    size = sum(f.stat().st_size for f in dest.glob("*.safetensors"))
    log.info("%s: packed checkpoint %.2f MB (fake %.2f MB), %d exceptions", out, size / 1e6,
             sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e6,
             sum(s["exceptions"] for s in linears.values()))  # fmt: skip
    return dest


def adopt(out: Path, model_dir: Path) -> None:
    """The build's hook: the packed partial of ``out`` (now swapped in as ``model_dir``) becomes ``packed/``
    beside it, with ``model_dir``'s tokenizer and license files; a build without one leaves no stale ``packed/``."""
    from zoo.workdir import normal_permissions, swap_in

    final = model_dir.parent / "packed"
    partial = partial_for(out)
    if not partial.is_dir():
        shutil.rmtree(final, ignore_errors=True)
        return
    for f in model_dir.iterdir():
        if f.is_file() and not f.is_symlink() and f.name not in SKIP and not f.name.endswith(WEIGHTS + (".safetensors",)):
            shutil.copy2(f, partial / f.name)
    normal_permissions(partial)
    swap_in(partial, final)


def unpack(src: Path, dst: Path) -> dict[str, Any]:
    """Write the 16-bit checkpoint of packed folder ``src`` into ``dst`` (absent or empty) and check its tensors
    against the recorded hash before anything is written; nothing is left in ``dst`` on failure."""
    from huggingface_hub import save_torch_state_dict

    from zoo.errors import UsageError, VerifyError

    config = read_config(src)
    q = config.pop("quantization_config")
    if dst.exists() and (not dst.is_dir() or dst.is_symlink() or any(dst.iterdir())):
        raise UsageError(f"{dst} exists and is not an empty folder; fix: name a new or empty output folder")
    tensors = unpacked_state(src, q)
    digest = state_sha256(tensors)
    if digest != q.get("unpacked_sha256"):
        raise VerifyError(f"{src}: the unpacked weights do not match the recorded sha256; fix: pull the packed release again")
    created = not dst.exists()
    dst.mkdir(parents=True, exist_ok=True)
    try:
        save_torch_state_dict(tensors, str(dst), max_shard_size="4GB")
        (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for f in src.iterdir():
            if f.is_file() and not f.is_symlink() and f.name not in SKIP and not f.name.endswith(WEIGHTS + (".safetensors",)):
                shutil.copyfile(f, dst / f.name)
    except BaseException:
        for f in dst.iterdir():
            f.unlink() if not f.is_dir() or f.is_symlink() else shutil.rmtree(f)
        if created:
            os.rmdir(dst)
        raise
    return {"source": str(src), "out": str(dst), "tensors": len(tensors), "unpacked_sha256": digest}


def read_config(src: Path) -> dict[str, Any]:
    from zoo.errors import UsageError

    try:
        config = json.loads((src / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{src}: no readable config.json ({type(e).__name__}); fix: name a packed checkpoint folder") from None
    q = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(q, dict) or q.get("format") != FORMAT:
        raise UsageError(f"{src}: not a {FORMAT} checkpoint; fix: name the packed/ folder of a native method's build")
    if q.get("version") not in READS:
        reads = " and ".join(map(str, READS))
        raise UsageError(f"{src}: {FORMAT} version {q.get('version')!r}, this zoo reads {reads}; fix: upgrade zoo")
    return config


def unpacked_state(src: Path, q: dict[str, Any]) -> dict[str, Any]:
    """Every tensor of the fake checkpoint, the Linears decoded from their packed tensors."""
    packed = load_folder(src)
    out: dict[str, Any] = {}
    for name, spec in q["linears"].items():
        prefix = f"{name}."
        mine = {k: packed.pop(prefix + k) for k in spec["tensors"]}
        out[f"{name}.weight"] = codec.decode(spec, mine)
    out.update(packed)
    return out
