"""llm-compressor's distributed oneshot, one process per GPU, as its docs at 0.14 run it.

Where more than one GPU is visible, ``llmc.run`` does not load the model itself: it writes the job
(the modifiers, the calibration dataset, where the base is) to a file and starts ``torchrun`` on this
module, one rank per GPU. Each rank then does what llm-compressor's distributed examples do:
``init_dist()``, the model loaded inside ``load_offloaded_model`` (rank 0 reads the weights into shared
host memory, or disk past the cap; the other ranks map the same pages), ``oneshot`` on this rank's
share of the calibration windows (``own_slice``), and ``save_pretrained`` on every rank (only rank 0
writes). The modifiers synchronise what they observe: GPTQ sums Hessians onto the rank that owns each
Linear and broadcasts the result, AWQ and SmoothQuant all-reduce their statistics, RTN needs none. zoo
adds no scheme of its own.

On a machine without GPUs the same path runs with gloo over CPU processes (``ZOO_BUILD_PROCESSES``),
which is how the tests prove it gives the one-process checkpoint.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any


def _init() -> None:
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        from compressed_tensors.offload import init_dist

        init_dist()  # nccl, one GPU per rank (LOCAL_RANK)
    else:  # compressed-tensors' init_dist asks for an accelerator; on CPU the same group over gloo
        dist.init_process_group(backend="gloo", init_method="env://")


def _load(job: dict[str, Any]) -> Any:
    """One copy of the weights for every rank: rank 0 reads them into shared host memory (disk past the cap),
    the others map the same pages; each rank onloads a layer at a time to its own GPU."""
    import transformers
    from compressed_tensors.offload import load_offloaded_model

    auto = getattr(transformers, job["auto_class"])
    kwargs: dict[str, Any] = {"dtype": "auto", "trust_remote_code": False, "offload_folder": job["offload_dir"]}
    if job["host_memory"] is None:
        kwargs["device_map"] = "auto_offload"  # the host's shared memory, then disk
    else:
        kwargs.update(device_map="auto", max_memory={"cpu": job["host_memory"]})
    with load_offloaded_model(auto):
        model = auto.from_pretrained(job["base_path"], **kwargs)
    return model.eval()


def own_slice(kwargs: dict[str, Any], rank: int, ranks: int) -> dict[str, Any]:
    """This rank's contiguous share of the calibration windows, as llm-compressor's docs partition a dataset
    (each rank loads N/R samples). Not its automatic split of a dataset that all ranks share: 0.14.0.1 builds
    the sampler over the slice but the DataLoader over the whole set, so every rank reads the first N/R."""
    if "dataset" not in kwargs:
        return kwargs  # data-free
    n = kwargs["num_calibration_samples"]
    start, end = n * rank // ranks, n * (rank + 1) // ranks
    return {**kwargs, "dataset": kwargs["dataset"].select(range(start, end)), "num_calibration_samples": end - start}


def main(job_file: str) -> None:
    import torch.distributed as dist
    from llmcompressor import oneshot

    with open(job_file, "rb") as f:
        job: dict[str, Any] = pickle.load(f)  # written by llmc.run in the parent, moments ago
    _init()
    try:
        model = _load(job)
        from zoo.methods.llmc import cpu_safe

        with cpu_safe():
            oneshot(model=model, recipe=job["modifiers"], **own_slice(job["oneshot"], dist.get_rank(), dist.get_world_size()))
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Attempting to save a model with offloaded modules")
            model.save_pretrained(job["out"], save_compressed=True, max_shard_size=job["max_shard_bytes"])
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(str(Path(sys.argv[1])))
