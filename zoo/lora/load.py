"""Loading a QLoRA / IR-QLoRA release: the base it names, quantized as it was in training, plus the adapter.

``load("zoo-org/llama3-8b-irqlora-4bit")`` (or a local folder) reads ``quantization.json``, fetches
the 16-bit base at its pinned revision, quantizes its decoder Linears to NF4 exactly as the build did
(with IR-QLoRA's saved offsets), and puts the peft adapter on top. QLoRA releases also load with
transformers + bitsandbytes + peft alone (the card shows how); IR-QLoRA's offsets need this.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

log = logging.getLogger(__name__)


def is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() and (folder / "quantization.json").is_file()


def read_taus(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    from zoo.lora.nf4 import Blockwise8

    tensors = load_file(str(path))
    names = {k.rsplit(".", 1)[0] for k in tensors}
    return {n: Blockwise8(tensors[f"{n}.tau_codes"], tensors[f"{n}.tau_scales"], 0.0) for n in names}


def base_path(reference: str, revision: str | None) -> Path:
    """Where the named base is on this machine: a built-in, a local folder, or a Hub snapshot."""
    from zoo.tiny.bases import BUILTIN_BASES, builtin_path

    if reference in BUILTIN_BASES:
        return builtin_path(reference)
    if Path(reference).is_dir():
        return Path(reference)
    from zoo.loader import download

    return download(reference, revision)


def load(source: str | Path, base: Path | None = None, device: str = "cpu", dtype: Any = None, backend: str | None = None) -> Any:
    """The quantized base with the adapter attached (a peft model, in eval mode).

    ``source`` is a folder or a Hub repo id; ``base`` overrides where the 16-bit base is read from."""
    import torch
    import transformers
    from peft import PeftModel

    from zoo.lora.quantized import quantize_base

    folder = Path(source)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(source), ignore_patterns=["merged/*"]))
    if not is_adapter(folder):
        raise ZooError(f"{source} is not a zoo LoRA release (no adapter_config.json + quantization.json); fix: check the path")
    info = json.loads((folder / "quantization.json").read_text())
    q = info["quantization"]
    path = base or base_path(info["base"]["reference"], info["base"]["revision"])
    dtype = dtype or (torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False)
    taus = read_taus(folder / "icq.safetensors") if q.get("icq") else None
    quantize_base(model, q["blocksize"], q["double_quant"], device, dtype, backend, taus=taus)  # type: ignore[arg-type]
    peft_model = PeftModel.from_pretrained(model, folder, is_trainable=False)
    log.info("loaded %s on %s (%s base, %s)", folder, device, path, "ICQ offsets" if taus else "plain NF4")
    return peft_model.eval()
