"""IR-QLoRA's Information Elastic Connection (Qin et al. 2024, arXiv 2402.05445, section 3.2).

Each LoRA branch gets two parameter-free shortcuts with one learnt scalar each (both start at 0, so
training starts from plain LoRA), as in the authors' code: the down-projection A adds ``beta_A`` times
the input averaged over r groups of consecutive features, and the up-projection B adds ``beta_B``
times its r-dim input repeated over r groups of consecutive outputs (dropout applies to A's own path
only). Both shortcuts are linear, so once training ends they fold exactly into the LoRA matrices,
``A' = A + beta_A P`` and ``B' = B + beta_B R``: the saved adapter is a standard peft LoRA of the same
rank that peft loads with no zoo code. Needs r to divide the inputs and outputs of every target.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError

ADAPTER = "default"


def _modules() -> tuple[type, type]:
    import torch
    from torch import nn

    class ElasticA(nn.Module):
        def __init__(self, lora: nn.Linear, dropout: nn.Module) -> None:
            super().__init__()
            self.lora, self.dropout = lora, dropout
            self.beta = nn.Parameter(torch.zeros(1, dtype=lora.weight.dtype, device=lora.weight.device))

        @property
        def weight(self) -> torch.Tensor:  # peft reads the dtype of lora_A.weight
            return self.lora.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            r = self.lora.out_features
            out: torch.Tensor = self.lora(self.dropout(x)) + self.beta * x.reshape(*x.shape[:-1], r, -1).mean(-1)
            return out

        def folded(self) -> torch.Tensor:
            r, n = self.lora.out_features, self.lora.in_features
            pool = torch.eye(r, device=self.beta.device).repeat_interleave(n // r, dim=1) * (r / n)
            return self.lora.weight.detach() + self.beta.detach() * pool.to(self.lora.weight.dtype)

    class ElasticB(nn.Module):
        def __init__(self, lora: nn.Linear) -> None:
            super().__init__()
            self.lora = lora
            self.beta = nn.Parameter(torch.zeros(1, dtype=lora.weight.dtype, device=lora.weight.device))

        @property
        def weight(self) -> torch.Tensor:
            return self.lora.weight

        def forward(self, u: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.lora(u) + self.beta * u.repeat_interleave(self.lora.out_features // u.shape[-1], dim=-1)
            return out

        def folded(self) -> torch.Tensor:
            out, r = self.lora.out_features, self.lora.in_features
            spread = torch.eye(r, device=self.beta.device).repeat_interleave(out // r, dim=0)
            return self.lora.weight.detach() + self.beta.detach() * spread.to(self.lora.weight.dtype)

    return ElasticA, ElasticB


def lora_layers(model: Any) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "lora_A") and ADAPTER in getattr(m, "lora_A", {})]


def attach(model: Any) -> int:
    """Wrap every LoRA branch of the peft ``model`` with elastic connections; returns how many."""
    from torch import nn

    elastic_a, elastic_b = _modules()
    layers = lora_layers(model)
    for name, layer in layers:
        a, b = layer.lora_A[ADAPTER], layer.lora_B[ADAPTER]
        r = a.out_features
        if a.in_features % r or b.out_features % r:
            raise ZooError(
                f"{name}: LoRA rank {r} does not divide its {a.in_features} inputs and {b.out_features} outputs, which "
                "information elastic connection needs; fix: params.rank (a power of two) or elastic_connection: false"
            )
        layer.lora_A[ADAPTER] = elastic_a(a, layer.lora_dropout[ADAPTER])
        layer.lora_dropout[ADAPTER] = nn.Identity()
        layer.lora_B[ADAPTER] = elastic_b(b)
    return len(layers)


def fold(model: Any) -> dict[str, list[float]]:
    """Fold the shortcuts into plain LoRA weights (exact); returns the learnt betas by layer."""
    betas: dict[str, list[float]] = {}
    for name, layer in lora_layers(model):
        a, b = layer.lora_A[ADAPTER], layer.lora_B[ADAPTER]
        if not hasattr(a, "folded"):
            continue
        a.lora.weight.data.copy_(a.folded())
        b.lora.weight.data.copy_(b.folded())
        betas[name] = [float(a.beta.detach()), float(b.beta.detach())]
        layer.lora_A[ADAPTER], layer.lora_B[ADAPTER] = a.lora, b.lora
        layer.lora_dropout[ADAPTER] = a.dropout
    return betas
