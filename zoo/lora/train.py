"""The LoRA training loop, resumable from its last checkpoint.

QLoRA's recipe: AdamW (no weight decay), constant learning rate after a linear warm-up over the first
``warmup_ratio`` of the steps, gradients clipped to ``max_grad_norm``. A step's batch is a pure
function of the seed and the step number (a fresh permutation of the rows per epoch), and a checkpoint
holds the trainable weights, the optimizer state, the random-number state and the loss history, so a
resumed run takes exactly the steps the interrupted one would have: the same adapter, bit for bit,
on the same machine. Checkpoints are written atomically; only the newest is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.lora.params import LoRAParams
from zoo.workdir import atomic_write

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint-{:07d}.pt"


@dataclass(frozen=True)
class TrainResult:
    steps: int
    losses: tuple[float, ...]  # mean loss of every step
    resumed_from: int  # 0 for a fresh run
    seconds: float


def batch_indices(step: int, batch_size: int, rows: int, seed: int) -> list[int]:
    """The rows of ``step``'s batch: positions ``step * batch_size ...`` in a stream of per-epoch permutations."""
    import torch

    perms: dict[int, Any] = {}  # a batch spans at most two epochs
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(pos, rows)
        if epoch not in perms:
            perms[epoch] = torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        out.append(int(perms[epoch][i]))
    return out


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    n = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for row, (x, y) in enumerate(examples):
        ids[row, : len(x)], labels[row, : len(y)], mask[row, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def latest(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*.pt"))
    return found[-1] if found else None


def _trainable(model: Any) -> dict[str, Any]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save(folder: Path, step: int, model: Any, optimizer: Any, losses: list[float], key: str) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "key": key,
        "step": step,
        "trainable": {n: p.detach().cpu() for n, p in _trainable(model).items()},
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "losses": losses,
    }
    final = folder / CHECKPOINT.format(step)
    with atomic_write(final, fsync=True) as f:  # on disk before it takes the final name
        torch.save(state, f)
    for old in folder.glob("checkpoint-*.pt"):
        if old != final:
            old.unlink()


def _resume(folder: Path, model: Any, optimizer: Any, key: str) -> tuple[int, list[float]]:
    import torch

    path = latest(folder)
    if path is None:
        return 0, []
    try:  # weights_only: a checkpoint holds tensors, numbers, strings and containers; unpickling code is refused
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or code-carrying file: torch raises several types
        log.warning("cannot read %s (%s: %s); starting afresh", path, type(e).__name__, str(e).splitlines()[0][:120])
        return 0, []
    if not isinstance(state, dict) or state.get("key") != key:
        log.info("%s belongs to another recipe or data; starting afresh", path)
        return 0, []
    params = _trainable(model)
    for name, value in state["trainable"].items():
        params[name].data.copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    log.info("resuming from step %d (%s)", state["step"], path)
    return int(state["step"]), list(state["losses"])


def train(
    model: Any,
    examples: list[tuple[list[int], list[int]]],
    params: LoRAParams,
    pad_id: int,
    device: str,
    folder: Path,
    key: str,
    report: Callable[[int, int], None],
) -> TrainResult:
    """Train ``model``'s trainable parameters for ``params.steps`` steps; checkpoints go to ``folder``.

    ``key`` identifies the run (recipe and data); a checkpoint with another key is not resumed."""
    import time

    import torch

    start = time.time()
    trainable = list(_trainable(model).values())
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, betas=(0.9, 0.999), weight_decay=0.0)
    step, losses = _resume(folder, model, optimizer, key)
    first = step
    warmup = max(1, round(params.steps * params.warmup_ratio))
    model.train()
    while step < params.steps:
        for group in optimizer.param_groups:
            group["lr"] = params.learning_rate * min(1.0, (step + 1) / warmup)
        rows = batch_indices(step, params.batch_size, len(examples), params.seed)
        loss = model(**collate([examples[i] for i in rows], pad_id, device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, params.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        step += 1
        report(step, params.steps)
        if step % params.save_every == 0 or step == params.steps:
            _save(folder, step, model, optimizer, losses, key)
    model.eval()
    return TrainResult(step, tuple(losses), first, round(time.time() - start, 3))
