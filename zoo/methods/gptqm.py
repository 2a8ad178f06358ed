"""GPTQ and AWQ through gptqmodel, for ``format: gptq`` / ``format: awq`` (the ``gptqmodel`` extra).

These checkpoints are the GPTQ and AWQ-GEMM formats that transformers 5 loads through gptqmodel, and
that vLLM and SGLang serve. gptqmodel quantizes layer by layer too, in this one process on one GPU
(zoo does not drive gptqmodel's own multi-GPU mode; ``zoo plan`` says so for these recipes). On CPU it
needs at least two worker threads and the AWQ_TORCH backend, and it compiles a C++ extension on first use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from zoo.errors import MissingExtraError
from zoo.methods.base import BuildContext


def _import() -> Any:
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, os.cpu_count() or 2)))
    try:
        import gptqmodel
    except ImportError as e:
        raise MissingExtraError(
            "this recipe's format needs gptqmodel, which is not installed; fix: pip install 'zoo[gptqmodel]'"
        ) from e
    return gptqmodel


def quantize(ctx: BuildContext[Any], config: Any) -> dict[str, Any]:
    import torch

    gptqmodel = _import()
    r = ctx.recipe
    backend = gptqmodel.BACKEND.AWQ_TORCH if r.method == "awq" and ctx.device == "cpu" else gptqmodel.BACKEND.AUTO
    # gptqmodel loads (and offloads) the base itself
    model = gptqmodel.GPTQModel.load(str(ctx.base_path), config, device=ctx.device, dtype=torch.bfloat16)
    calib = [
        {"input_ids": torch.tensor([w]), "attention_mask": torch.ones(1, len(w), dtype=torch.long)} for w in ctx.data.windows
    ]
    # gptqmodel writes per-layer logs into ./logs of the working directory: keep them out of the
    # user's folder (and out of checkouts, where they were once committed) by working in a scratch dir.
    scratch = Path(tempfile.mkdtemp(prefix=".gptqmodel-", dir=ctx.out.parent))
    here = os.getcwd()
    try:
        os.chdir(scratch)
        model.quantize(calib, batch_size=1, backend=backend)
    finally:
        os.chdir(here)
        shutil.rmtree(scratch, ignore_errors=True)
    model.save(str(ctx.out))
    ctx.processor.save_pretrained(ctx.out)  # keep the base's own tokenizer files
    (ctx.out / "quant_log.csv").unlink(missing_ok=True)
    return {"backend": "gptqmodel", "backend_version": gptqmodel.__version__}


def gptq_config(r: Any, dampening_frac: float, actorder: str | None) -> Any:
    gptqmodel = _import()
    group = -1 if r.weights.group_size == "channel" else r.weights.group_size
    return gptqmodel.GPTQConfig(
        bits=int(r.weights.bits),
        group_size=group,
        sym=bool(r.weights.symmetric),
        desc_act=actorder is not None,
        act_group_aware=False,
        damp_percent=dampening_frac,
    )


def awq_config(r: Any) -> Any:
    gptqmodel = _import()
    group = -1 if r.weights.group_size == "channel" else r.weights.group_size
    return gptqmodel.AWQConfig(bits=int(r.weights.bits), group_size=group, sym=bool(r.weights.symmetric))
