"""The pipeline's parts that need no model: the stage list and its loop, the device rule, the atomic file
write, the one lock implementation and the one quantization.json writer."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from zoo.errors import BusyError, GateError, NeedsAcceleratorError, ZooError


def test_one_ordered_list_serves_release_rehearse_and_the_cli() -> None:
    from zoo.pipeline.stages import NAMES, REHEARSED
    from zoo.rehearse import STAGES as REHEARSE_COLUMNS

    assert NAMES == ("build", "eval", "bench", "card", "push", "collection")
    assert [n for n in NAMES if n in REHEARSED] == list(REHEARSED)  # a rehearsal runs them in the same order
    assert REHEARSE_COLUMNS == ("base", *REHEARSED)


def test_the_loop_stops_at_the_first_failure_and_keeps_what_ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from zoo.pipeline import RunOptions
    from zoo.pipeline import stages as pipeline
    from zoo.workdir import Layout

    ran: list[str] = []

    def ok(name: str):  # noqa: ANN202
        return lambda recipe, layout, options: ran.append(name) or SimpleNamespace(status=f"{name} done")

    def fails(recipe, layout, options):  # noqa: ANN001, ANN202
        ran.append("eval")
        raise GateError("gate failed; fix: investigate")

    fake = (
        pipeline.Stage("build", ok("build")),
        pipeline.Stage("eval", fails),
        pipeline.Stage("bench", ok("bench")),
        pipeline.Stage("collection", ok("collection"), applies=lambda options: not options.dry_run),
    )
    monkeypatch.setattr(pipeline, "STAGES", fake)
    monkeypatch.setattr(pipeline, "NAMES", tuple(s.name for s in fake))
    options, layout = RunOptions(recipes=tmp_path), Layout(tmp_path, "x")
    done = pipeline.run(SimpleNamespace(name="x"), layout, options, pipeline.NAMES)  # type: ignore[arg-type]
    assert ran == ["build", "eval"] and list(done.results) == ["build"]
    assert done.failed == "eval" and isinstance(done.error, GateError) and not done.ok
    ran.clear()
    skipped = pipeline.run(SimpleNamespace(name="x"), layout, options.but(dry_run=True), ("build", "bench", "collection"))  # type: ignore[arg-type]
    assert ran == ["build", "bench"] and skipped.ok  # the collection follows a real push only
    with pytest.raises(ValueError):
        pipeline.run(SimpleNamespace(name="x"), layout, options, ("quantize",))  # type: ignore[arg-type]


def test_run_options_are_frozen_and_copied_with_changes(tmp_path: Path) -> None:
    import dataclasses

    from zoo.pipeline import RunOptions

    options = RunOptions(recipes=tmp_path, host_memory=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.device = "cpu"  # type: ignore[misc]
    assert options.but(host_memory=None).host_memory is None and options.host_memory == 5


def test_one_device_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from zoo.device import resolve

    with pytest.raises(ZooError, match="unknown device 'gpu'"):
        resolve("gpu")
    assert resolve("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("auto") == "cpu"
    with pytest.raises(NeedsAcceleratorError, match="--device cuda but no CUDA device"):
        resolve("cuda")
    with pytest.raises(NeedsAcceleratorError, match="x needs a GPU; fix: .*--device cpu"):
        resolve("auto", heavy="x needs a GPU")
    assert resolve("cpu", heavy="x needs a GPU") == "cpu"  # asked for out loud
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve("auto", heavy="x needs a GPU") == resolve("cuda") == "cuda"


def test_atomic_write_keeps_the_old_file_on_failure_and_refuses_links(tmp_path: Path) -> None:
    from zoo.workdir import atomic_write

    path = tmp_path / "record.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o666 & ~_umask()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    with pytest.raises(ZooError, match="symbolic link"), atomic_write(link) as f:
        f.write(b"x")
    assert victim.read_text() == "keep"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_exclusive_lock_refuses_a_second_holder_and_removes_its_file(tmp_path: Path) -> None:
    from zoo.lock import exclusive

    path = tmp_path / "lock"

    def busy(info: dict[str, object]) -> ZooError:
        return BusyError(f"held by pid {info.get('pid')}")

    with exclusive(path, {"stage": "one"}, busy) as previous:
        assert previous == {} and path.exists()
        import subprocess
        import sys

        code = (
            "import sys; from pathlib import Path; from zoo.lock import exclusive; from zoo.errors import BusyError\n"
            "try:\n    with exclusive(Path(sys.argv[1]), {}, lambda i: BusyError(str(i.get('pid')))): pass\n"
            "except BusyError as e: print('busy', e)"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"busy {os.getpid()}"
    assert not path.exists()
    path.write_text('{"pid": 999999, "stage": "dead"}')  # left by a holder that died: taken over, reported
    with exclusive(path, {}, busy) as previous:
        assert previous["stage"] == "dead"


def test_one_quantization_json_writer(tmp_path: Path) -> None:
    import json

    from zoo.records import read_quantization, write_quantization

    written = write_quantization(tmp_path, "billm", "fake", {"bits_per_weight": 1.1})
    assert list(json.loads((tmp_path / "quantization.json").read_text())) == ["method", "format", "bits_per_weight"]
    assert read_quantization(tmp_path) == written
    with pytest.raises(ValueError, match="format"):
        write_quantization(tmp_path, "billm", "fake", {"format": "other"})
