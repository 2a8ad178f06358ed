"""lm-evaluation-harness tasks on an already loaded model, as the study reports them.

Zero-shot tasks run in one ``simple_evaluate`` call and MMLU (5-shot) in another. MMLU is reported
overall and by category (stem, humanities, social sciences, other), size-weighted as lm-eval does.

Offline data: a folder with ``<task>.jsonl`` files (and ``mmlu/<subject>.{dev,test}.jsonl``) in each
task's own schema. zoo writes task YAMLs that ``include:`` the installed lm-eval task file by absolute
path and only swap the data source, so lm-eval's real prompts and preprocessing run over them.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import TaskDataError
from zoo.tasks import TASKS
from zoo.variant.metrics import ZERO_SHOT_AVG

log = logging.getLogger(__name__)
BUILTIN_DATA = Path(__file__).parent / "data"
CATEGORIES = ("stem", "humanities", "social_sciences", "other")


def _task_yaml(name: str) -> Path:
    import lm_eval

    spec = TASKS.get(name)
    rel = spec.task_file if spec and spec.task_file else f"mmlu/default/{name}.yaml"
    path = Path(lm_eval.__file__).parent / "tasks" / rel
    if not path.exists():
        raise TaskDataError(f"lm-eval {lm_eval.__version__} has no task file {rel} for {name!r}")
    return path


def _check_jsonl(path: Path, required: tuple[str, ...]) -> None:
    if not path.exists():
        raise TaskDataError(f"task data {path} is missing; fix: add it or drop the task from eval.tasks")
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskDataError(f"{path}:{i}: not valid JSON ({e.msg}); fix that line") from e
        missing = [k for k in required if k not in row]
        if missing:
            raise TaskDataError(f"{path}:{i}: missing field(s) {', '.join(missing)}; fix that line")


def _local_configs(tasks: list[str], data: Path, out: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """Write local task YAMLs; returns (zero-shot task names, mmlu subject task names, subject -> category)."""
    zero, mmlu, category = [], [], {}
    for task in tasks:
        if task != "mmlu":
            path = data / f"{task}.jsonl"
            _check_jsonl(path, TASKS[task].columns)
            split = TASKS[task].split
            cfg: dict[str, Any] = {
                "include": str(_task_yaml(task)),
                "task": f"zoo_{task}",
                "tag": [],
                "dataset_path": "json",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": {split: str(path.resolve())}},
                "training_split": None,
                "validation_split": split if split == "validation" else None,
                "test_split": split if split == "test" else None,
            }
            (out / f"zoo_{task}.yaml").write_text(yaml.safe_dump(cfg))
            zero.append(f"zoo_{task}")
            continue
        for test in sorted((data / "mmlu").glob("*.test.jsonl")):
            subject = test.name.removesuffix(".test.jsonl")
            dev = test.with_name(f"{subject}.dev.jsonl")
            for p in (test, dev):
                _check_jsonl(p, TASKS["mmlu"].columns)
            source = _task_yaml(f"mmlu_{subject}")
            tag = str(yaml.safe_load(source.read_text()).get("tag", ""))
            category[f"zoo_mmlu_{subject}"] = next((c for c in CATEGORIES if tag == f"mmlu_{c}_tasks"), "other")
            cfg = {
                "include": str(source),
                "task": f"zoo_mmlu_{subject}",
                "tag": [],
                "dataset_path": "json",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": {"test": str(test.resolve()), "dev": str(dev.resolve())}},
            }
            (out / f"zoo_mmlu_{subject}.yaml").write_text(yaml.safe_dump(cfg))
            mmlu.append(f"zoo_mmlu_{subject}")
        if not mmlu:
            raise TaskDataError(f"no mmlu/*.test.jsonl under {data}; fix: add MMLU subjects or drop mmlu")
    return zero, mmlu, category


def _run(lm: Any, names: list[str], fewshot: int, limit: int | None, manager: Any) -> dict[str, Any]:
    import lm_eval.evaluator
    from lm_eval import simple_evaluate

    # lm-eval records the git commit of whatever folder zoo runs in (meaningless here; eval.json records
    # the versions) by running git, which prints "fatal: not a git repository" outside a checkout; and
    # torch's environment report, which runs pip, conda and nvidia-smi on every call (a second per task
    # group on this machine's CPU) for fields zoo never reads.
    lm_eval.evaluator.get_git_commit_hash = lambda: None
    lm_eval.evaluator.add_env_info = lambda storage: None

    if not names:
        return {"results": {}, "versions": {}, "n-samples": {}}
    out: dict[str, Any] = simple_evaluate(
        model=lm,
        tasks=names,
        num_fewshot=fewshot,
        limit=limit,
        task_manager=manager,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
        log_samples=True,  # per-item outputs, kept (compressed) beside eval.json so any number can be audited
    )
    return out


def check_backend(backend: str) -> None:
    """Fail before any measuring when the backend cannot run here."""
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            from zoo.errors import MissingExtraError

            raise MissingExtraError("--backend vllm needs vLLM, which is not installed; fix: pip install vllm") from e


def tensor_parallel() -> int:
    """vLLM's tensor-parallel size: every visible GPU, as ``zoo plan`` sizes the stage (``plan.fit.tensor_parallel``)."""
    import torch

    from zoo.plan.fit import tensor_parallel as size

    return size(torch.cuda.device_count() if torch.cuda.is_available() else 0)


def harness_model(model: Any, tokenizer: Any, batch_size: int, backend: str, model_dir: Path | None) -> Any:
    """lm-eval's HF wrapper around the loaded model, or its vLLM backend on the checkpoint folder."""
    if backend == "vllm":
        check_backend(backend)
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(pretrained=str(model_dir), batch_size=batch_size, dtype="auto", gpu_memory_utilization=0.8,
                    tensor_parallel_size=tensor_parallel())  # fmt: skip
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=model.config.max_position_embeddings)


def release_vllm(lm: Any) -> None:
    """lm-eval's in-process vLLM engine keeps its GPU memory (weights, KV cache, the tensor-parallel group)
    until it is shut down, not when the wrapper goes out of scope: shut it down before lmms-eval or the next
    model's engine loads."""
    import contextlib
    import gc

    engine = getattr(lm, "model", None)
    with contextlib.suppress(Exception):
        engine.llm_engine.engine_core.shutdown()  # type: ignore[union-attr]
    with contextlib.suppress(Exception):
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    if hasattr(lm, "model"):
        lm.model = None
    del engine
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass(frozen=True)
class _Suite:
    """What a suite's tasks resolve to, built once per process and shared by the base and the variant."""

    manager: Any  # lm_eval.tasks.TaskManager
    zero: list[str]
    subjects: list[str]
    category: dict[str, str]


_SUITES: dict[tuple[str, ...], _Suite] = {}
_CONFIG_DIRS: list[tempfile.TemporaryDirectory[str]] = []  # kept for the process: the managers read them


def _suite(tasks: list[str], data: Path | None) -> _Suite:
    """A TaskManager that indexes only the task folders the suite needs (lm-eval's default indexes every
    one of its ~15k tasks, which cost half of a tiny eval's CPU time), cached per process."""
    key = (*tasks, *_signature(data))
    if key in _SUITES:
        return _SUITES[key]
    import lm_eval
    from lm_eval.tasks import TaskManager

    if data is not None:  # the local YAMLs include lm-eval's task files by absolute path
        tmp = tempfile.TemporaryDirectory(prefix="zoo-tasks-")
        _CONFIG_DIRS.append(tmp)
        zero, subjects, category = _local_configs(tasks, data, Path(tmp.name))
        paths = [tmp.name]
    else:
        zero = [t for t in tasks if t != "mmlu"]
        subjects, category = (["mmlu"] if "mmlu" in tasks else []), {}
        root = Path(lm_eval.__file__).parent / "tasks"
        paths = sorted({str(root / d) for t in tasks if (d := TASKS[t].task_dir)})
    manager = TaskManager(include_path=paths, include_defaults=False)
    _SUITES[key] = _Suite(manager, zero, subjects, category)
    return _SUITES[key]


def _signature(data: Path | None) -> tuple[str, ...]:
    """The offline data as it is now, so an edited task file is read (and checked) again."""
    if data is None:
        return ()
    files = sorted(p for p in data.rglob("*.jsonl") if p.is_file())
    return (str(data.resolve()), *(f"{p}:{(st := p.stat()).st_size}:{st.st_mtime_ns}" for p in files))


def evaluate(
    model: Any,
    tokenizer: Any,
    tasks: list[str],
    data: Path | None,
    limit: int | None,
    batch_size: int,
    backend: str = "hf",
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Metrics (``task/metric`` -> value) and per-task details for ``tasks``."""
    s = _suite(tasks, data)
    lm = harness_model(model, tokenizer, batch_size, backend, model_dir)
    try:
        zs = _run(lm, s.zero, 0, limit, s.manager)
        mm = _run(lm, s.subjects, TASKS["mmlu"].num_fewshot, limit, s.manager)
    finally:
        if backend == "vllm":
            release_vllm(lm)
        del lm
    use_mmlu, category = bool(s.subjects), s.category
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for task, res in zs["results"].items():
        plain = task.removeprefix("zoo_")
        for m in TASKS[plain].metrics:
            metrics[f"{plain}/{m}"] = float(res[f"{m},none"])
        details[plain] = {"num_fewshot": 0, "version": zs["versions"].get(task), "samples": _n(zs, task)}
    if use_mmlu:
        metrics.update(_mmlu(mm, category))
        details["mmlu"] = {"num_fewshot": TASKS["mmlu"].num_fewshot, "samples": sum(_n(mm, t) for t in mm["n-samples"])}
    accs = [v for k, v in metrics.items() if k.endswith("/acc") and not k.startswith("mmlu")]
    if accs:
        metrics[ZERO_SHOT_AVG] = sum(accs) / len(accs)
    samples = {task.removeprefix("zoo_"): rows for res in (zs, mm) for task, rows in (res.get("samples") or {}).items()}
    return {"metrics": metrics, "tasks": details, "samples": samples}


def write_samples(path: Path, samples: dict[str, list[Any]]) -> str:
    """lm-eval's per-item records as gzip JSON lines (``{"task": ..., **record}``), atomically; their sha256.
    The gzip header carries no time or name, so the same outputs give the same bytes."""
    import gzip

    from zoo.workdir import atomic_write, sha256_file

    with atomic_write(path) as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for task in sorted(samples):
            for row in samples[task]:
                out.write(json.dumps({"task": task, **row}, default=str, sort_keys=True).encode() + b"\n")
    return sha256_file(path)


def _n(res: dict[str, Any], task: str) -> int:
    return int(res.get("n-samples", {}).get(task, {}).get("effective", 0))


def _mmlu(res: dict[str, Any], category: dict[str, str]) -> dict[str, float]:
    r = res["results"]
    if "mmlu" in r:  # lm-eval's own groups
        return {f"{g}/acc": float(r[g]["acc,none"]) for g in ("mmlu", *(f"mmlu_{c}" for c in CATEGORIES)) if g in r}
    sums: dict[str, list[float]] = {}
    for task, c in category.items():
        n = _n(res, task)
        for key in ("mmlu", f"mmlu_{c}"):
            s = sums.setdefault(key, [0.0, 0.0])
            s[0] += float(r[task]["acc,none"]) * n
            s[1] += n
    return {f"{k}/acc": s[0] / s[1] for k, s in sums.items() if s[1]}
