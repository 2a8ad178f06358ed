"""What RTN, GPTQ, AWQ and SmoothQuant share: recipe -> llm-compressor modifiers -> compressed-tensors.

Calibration runs through llm-compressor's sequential pipeline with the family's decoder layer as the
unit, so the accelerator holds one decoder layer (plus its activations) at a time while the rest of
the model stays on the host, or on disk where the host is too small (see ``zoo.loader``).

Where more than one GPU is visible the same recipe runs through llm-compressor's own distributed
oneshot, one process per GPU under ``torchrun`` (``llmc_dist.py``): each rank calibrates on its slice of
the calibration set and the modifiers synchronise their statistics, so a build takes about 1/N of the
time with the same host memory (the ranks share one copy of the weights).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.methods.base import BuildContext

log = logging.getLogger(__name__)


def weight_args(recipe: Any) -> Any:
    from compressed_tensors.quantization import QuantizationArgs

    w = recipe.weights
    grouped = w.group_size != "channel"
    return QuantizationArgs(
        num_bits=int(w.bits),
        type="int",
        symmetric=bool(w.symmetric),
        strategy="group" if grouped else "channel",
        group_size=w.group_size if grouped else None,
    )


def activation_args(recipe: Any) -> Any:
    from compressed_tensors.quantization import QuantizationArgs

    a = recipe.activations
    if a is None:
        return None
    return QuantizationArgs(num_bits=a.bits, type="int", symmetric=True, strategy=a.granularity, dynamic=a.dynamic)


def config_groups(recipe: Any) -> dict[str, Any]:
    from compressed_tensors.quantization import QuantizationScheme

    scheme = QuantizationScheme(targets=["Linear"], weights=weight_args(recipe), input_activations=activation_args(recipe))
    return {"group_0": scheme}


def scoped(patterns: list[str], scope: str) -> list[str]:
    """``re:.*q_proj$`` -> ``re:.*language_model.*q_proj$`` so mappings skip the vision tower."""
    if not scope:
        return patterns
    return [f"re:.*{scope}.*{p.removeprefix('re:.*')}" if p.startswith("re:.*") else p for p in patterns]


@contextlib.contextmanager
def cpu_safe() -> Iterator[None]:
    """llm-compressor pins cached activations unconditionally; pinning needs an accelerator."""
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.cuda.is_available():
        yield
        return
    original = IntermediatesCache.pin_memory
    IntermediatesCache.pin_memory = lambda self, *a, **k: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        IntermediatesCache.pin_memory = original  # type: ignore[method-assign]


PROCESSES_ENV = "ZOO_BUILD_PROCESSES"
# Modifiers that rescale weights in place on every rank: with GPUs each rank rescales its own onloaded copy;
# on CPU the ranks compute on the one shared copy, and llm-compressor's AWQ asks for an accelerator outright.
RESCALING = ("awq", "smoothquant")


def processes(ctx: BuildContext[Any], data_free: bool) -> int:
    """How many ranks llm-compressor's distributed oneshot gets: one per visible GPU (at most one per
    calibration window); ``$ZOO_BUILD_PROCESSES`` overrides it (on a CPU machine, N gloo processes: how the
    tests run this path without GPUs)."""
    given = os.environ.get(PROCESSES_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise UsageError(
                f"{PROCESSES_ENV}={given[:20]!r} is not a whole number of processes; fix: set it to 1 or more, or unset it"
            )
        ranks = int(given)
        if ranks > 1 and ctx.device != "cuda" and ctx.recipe.method in RESCALING:
            raise UsageError(
                f"{PROCESSES_ENV}={ranks}: llm-compressor's distributed {ctx.recipe.method} runs on GPUs only (on CPU its "
                f"ranks would rescale one shared copy of the weights); fix: unset {PROCESSES_ENV} or build on GPUs"
            )
    elif ctx.device == "cuda":
        import torch

        ranks = max(1, torch.cuda.device_count())
    else:
        ranks = 1
    return ranks if data_free else min(ranks, len(ctx.data.windows))


def _oneshot_args(ctx: BuildContext[Any], data_free: bool) -> dict[str, Any]:
    if data_free:
        return {"pipeline": "datafree"}
    from datasets import Dataset

    windows = ctx.data.windows
    if ctx.data.images:
        from zoo.data.images import collate, image_text_rows

        tokenizer = getattr(ctx.processor, "tokenizer", ctx.processor)
        data = Dataset.from_list(image_text_rows(ctx.processor, tokenizer, windows, ctx.data.images))
        extra: dict[str, Any] = {"data_collator": collate}
    else:
        data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
        extra = {"max_seq_length": max(len(w) for w in windows)}
    return {
        "dataset": data,
        **extra,
        "num_calibration_samples": len(windows),
        "shuffle_calibration_samples": False,
        "pipeline": "sequential",
        "sequential_targets": [ctx.family.decoder_layer],
    }


def run(ctx: BuildContext[Any], modifiers: list[Any], data_free: bool = False) -> dict[str, Any]:
    """Apply ``modifiers`` with llm-compressor ``oneshot`` and save a compressed-tensors checkpoint."""
    import llmcompressor

    kwargs = _oneshot_args(ctx, data_free)
    info: dict[str, Any] = {"backend": "llmcompressor", "backend_version": llmcompressor.__version__}
    ranks = processes(ctx, data_free)
    if ranks > 1:
        import resource

        distributed(ctx, modifiers, kwargs, ranks)
        finish(ctx)
        # build.json's peak RSS is this process's, which never held the model: the largest rank's, beside it
        # (each rank's RSS counts the weights it maps from shared memory, so they do not add up)
        rank_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return {**info, "processes": ranks, "rank_peak_host_rss_bytes": rank_peak}
    from llmcompressor import oneshot

    model = ctx.load_model()
    with cpu_safe():
        oneshot(model=model, recipe=modifiers, **kwargs)
    save(ctx, model)
    return info


def distributed(ctx: BuildContext[Any], modifiers: list[Any], kwargs: dict[str, Any], ranks: int) -> None:
    """``torchrun`` with one rank per GPU on ``llmc_dist``; the ranks write the checkpoint into ``ctx.out``.
    This process never loads the model."""
    scratch = Path(tempfile.mkdtemp(prefix=".llmc-dist-", dir=ctx.out.parent))
    try:
        job = {
            "modifiers": modifiers,
            "oneshot": kwargs,  # every window: each rank takes its own share
            "auto_class": ctx.family.auto_class,
            "base_path": str(ctx.base_path),
            "host_memory": ctx.host_memory,
            "offload_dir": str(scratch / "offload"),
            "out": str(ctx.out),
            "max_shard_bytes": ctx.max_shard_bytes,
        }
        job_file = scratch / "job.pkl"
        with job_file.open("wb") as f:
            pickle.dump(job, f)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               "-m", "zoo.methods.llmc_dist", str(job_file)]  # fmt: skip
        log.info("%s: llm-compressor's distributed oneshot over %d processes", ctx.recipe.name, ranks)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        with (scratch / "ranks.log").open("wb") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=scratch, check=False)
        if done.returncode != 0:
            raise ZooError(
                f"{ctx.recipe.name}: llm-compressor's distributed oneshot over {ranks} processes failed "
                f"(exit {done.returncode}): {_last_error(scratch / 'ranks.log')}; fix: rerun with -v for the ranks' "
                f"log, or with {PROCESSES_ENV}=1 to build in one process"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _last_error(log_file: Path) -> str:
    from zoo.untrusted import plain

    lines = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    log.debug("the ranks' log:\n%s", "\n".join(lines[-200:]))
    import re

    ranks = [ln for ln in lines if re.match(r"\[rank\d+\]: \w*(Error|Exception)\b", ln)]  # the rank's own exception
    errors = [ln for ln in lines if "Error" in ln]
    return plain((ranks or errors or lines or ["no output"])[-1], 300)


def save(ctx: BuildContext[Any], model: Any) -> None:
    import warnings

    with warnings.catch_warnings():
        # offloaded modules are gathered one shard at a time; small shards bound that peak
        warnings.filterwarnings("ignore", message="Attempting to save a model with offloaded modules")
        model.save_pretrained(ctx.out, save_compressed=True, max_shard_size=ctx.max_shard_bytes)
    finish(ctx)


def finish(ctx: BuildContext[Any]) -> None:
    """What goes beside the weights, however they were written: the processor, and the ignore list fixed."""
    ctx.processor.save_pretrained(ctx.out)
    # llm-compressor's own recipe.yaml stays beside the checkpoint: with it, llm-compressor alone re-runs
    # the quantization (build.json holds zoo's recipe, which says the same in zoo's terms)
    config_path = ctx.out / "config.json"
    config = json.loads(config_path.read_text())
    qc = config.get("quantization_config", {})
    if ctx.family.multimodal and qc:
        # llm-compressor lists ignored modules under their in-memory names, which do not match the
        # checkpoint's names on reload; the family's patterns match both.
        qc["ignore"] = list(ctx.family.ignore)
        config_path.write_text(json.dumps(config, indent=2) + "\n")
