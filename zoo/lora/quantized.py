"""The frozen 4-bit base that LoRA adapters are trained on and loaded onto.

Every Linear of the decoder layers is replaced, in place, by its NF4 version; embeddings, norms and
``lm_head`` stay in 16-bit, as in QLoRA. Two backends compute the same thing:

- ``bitsandbytes``: ``bnb.nn.Linear4bit`` (real 4-bit storage, bitsandbytes' kernels). This is what
  ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)``
  builds, so a QLoRA adapter trained here loads onto the stock transformers + bitsandbytes base.
  IR-QLoRA's per-block offsets ride along as a small ``[out, in / blocksize]`` matrix added by a forward
  hook: since each block is 64 consecutive inputs of one row, ``T x = tau @ blocksum(x)``.
- ``torch``: zoo's own quantizer (``nf4.py``); the Linear keeps its dequantized weight in the compute
  dtype. Used where bitsandbytes is not installed; numerically the same model up to the rare 8-bit
  scale code that bitsandbytes' C kernel rounds the other way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import ZooError
from zoo.lora import icq, nf4

log = logging.getLogger(__name__)
Backend = Literal["bitsandbytes", "torch"]


@dataclass(frozen=True)
class QuantizedBase:
    """What was done to the base: enough to write ``quantization.json`` and ``icq.safetensors``."""

    backend: Backend
    blocksize: int
    double_quant: bool
    modules: tuple[str, ...]
    bits_per_weight: float  # codes + scales (+ offsets), averaged over the quantized Linears
    taus: dict[str, nf4.Blockwise8] = field(default_factory=dict)  # ICQ offsets by module name


def default_backend() -> Backend:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # an import of bitsandbytes can fail in many ways on a machine it does not support
        return "torch"
    return "bitsandbytes"


def linears(model: Any) -> list[tuple[str, Any]]:
    """The decoder layers' Linears, by their name in ``model``."""
    import torch

    from zoo.families import FAMILIES

    layers = FAMILIES.get("llama3").decoder_layers(model)  # LoRA methods are text-only (their specs say so)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    return [
        (f"{prefix}.{n}", m) for n, m in layers.named_modules() if isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear
    ]


def _set(model: Any, name: str, module: Any) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def _add_offsets(module: Any, tau: Any, blocksize: int) -> None:
    """A forward hook adding ``T x`` where T repeats each block's offset over its 64 inputs."""
    module.register_buffer("zoo_tau", tau, persistent=False)

    def hook(mod: Any, args: tuple[Any, ...], out: Any) -> Any:
        x = args[0].float()
        pooled = x.reshape(*x.shape[:-1], -1, blocksize).sum(-1)
        return out + (pooled @ mod.zoo_tau.T).to(out.dtype)

    module.register_forward_hook(hook)


def _bnb_linear(w: Any, bias: Any, blocksize: int, double_quant: bool, dtype: Any, device: str) -> Any:
    import bitsandbytes as bnb
    import torch

    lin = bnb.nn.Linear4bit(  # type: ignore[no-untyped-call]
        w.shape[1], w.shape[0], bias=bias is not None, compute_dtype=dtype, compress_statistics=double_quant,
        quant_type="nf4", device="meta",
    )  # fmt: skip
    lin.weight = bnb.nn.Params4bit(
        w.to(dtype), requires_grad=False, compress_statistics=double_quant, quant_type="nf4", blocksize=blocksize
    )
    if bias is not None:
        lin.bias = torch.nn.Parameter(bias.to(dtype), requires_grad=False)
    return lin.to(device)


def quantize_base(
    model: Any,
    blocksize: int,
    double_quant: bool,
    device: str,
    dtype: Any,
    backend: Backend | None = None,
    calibrate: tuple[float, int] | None = None,
    taus: dict[str, nf4.Blockwise8] | None = None,
    report: Callable[[int, int], None] | None = None,
) -> QuantizedBase:
    """Replace the decoder Linears of ``model`` by NF4 ones on ``device``; the rest moves there too.

    ``calibrate=(tau_range, steps)`` runs IR-QLoRA's offset search; ``taus`` gives offsets already
    found (a loader reading ``icq.safetensors``). Weights are processed one at a time on ``device``,
    so the accelerator never holds more than the 4-bit model plus one 16-bit weight."""
    import torch

    backend = backend or default_backend()
    model.to(dtype=dtype)  # embeddings, norms and lm_head compute in the same dtype as the NF4 Linears
    targets = linears(model)
    offsets = calibrate is not None or taus is not None
    found: dict[str, nf4.Blockwise8] = {}
    bits = 0.0
    count = 0
    for i, (name, lin) in enumerate(targets):
        w = lin.weight.detach().to(device, torch.float32)
        if offsets and w.shape[1] % blocksize:
            raise ZooError(
                f"{name}: {w.shape[1]} inputs is not a multiple of the block size {blocksize}; fix: weights.group_size"
            )
        tau = None
        if calibrate is not None:
            tau = icq.offsets(w, blocksize, *calibrate)
        elif taus is not None:
            if name not in taus or taus[name].codes.numel() != w.numel() // blocksize:
                raise ZooError(
                    f"icq.safetensors has no offsets for {name} (or the wrong number); fix: download the release again"
                )
            tau = taus[name]
        bits += nf4.bits_per_weight(blocksize, double_quant, offsets) * w.numel()
        count += w.numel()
        bias = None if lin.bias is None else lin.bias.detach()
        if backend == "bitsandbytes":
            per_block = None if tau is None else tau.dequantize().to(device).view(w.shape[0], -1)  # [out, in / block]
            shifted = w if per_block is None else w - per_block.repeat_interleave(blocksize, dim=1)
            new = _bnb_linear(shifted, bias, blocksize, double_quant, dtype, device)
            if per_block is not None:
                _add_offsets(new, per_block, blocksize)
        else:
            new = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, device=device, dtype=dtype)
            q = nf4.quantize(w, blocksize, double_quant) if tau is None else icq.around(w, tau, blocksize, double_quant)
            new.weight = torch.nn.Parameter(q.dequantize(dtype), requires_grad=False)
            if bias is not None:
                new.bias = torch.nn.Parameter(bias.to(device, dtype), requires_grad=False)
        if tau is not None:
            found[name] = tau
        _set(model, name, new)
        del w, lin
        if report:
            report(i + 1, len(targets))
    model.to(device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    names = tuple(n for n, _ in targets)
    return QuantizedBase(backend, blocksize, double_quant, names, round(bits / max(count, 1), 4), found)


def dequantized(module: Any) -> Any:
    """The 16-bit weight a quantized Linear computes with (offsets included): what a merge adds LoRA to."""
    import torch

    weight = module.weight
    if weight.__class__.__name__ == "Params4bit":
        import bitsandbytes.functional as F

        w = F.dequantize_4bit(weight.data, weight.quant_state).float()
        tau = getattr(module, "zoo_tau", None)
        if tau is not None:
            w = w + tau.repeat_interleave(w.shape[1] // tau.shape[1], dim=1)
        return w
    return weight.detach().to(torch.float32)
