"""Instruction data for LoRA fine-tuning, in Alpaca's format (instruction, input, output).

``alpaca`` is tatsu-lab/alpaca from the Hub (what the study and QLoRA / IR-QLoRA fine-tune on);
``builtin`` is ``instructions.jsonl`` shipped beside this file: questions about CPython's
documentation topics answered with their own text (the tiny bases' training register), made by
``python -m zoo.data.instructions``; anything ending in ``.json`` / ``.jsonl`` is a local file of
such rows. Prompts use Alpaca's template; only the response is learnt, as QLoRA does by default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

HUB = {"alpaca": "tatsu-lab/alpaca"}
BUILTIN = Path(__file__).with_name("instructions.jsonl")
NAMES = ("alpaca", "builtin")
PROMPT = {
    True: (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response: "
    ),
    False: (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response: "
    ),
}


@dataclass(frozen=True)
class Instructions:
    rows: list[dict[str, str]]
    identity: dict[str, Any]


def is_known(name: str) -> bool:
    return name in NAMES or name.endswith((".json", ".jsonl"))


def prompt(row: dict[str, str]) -> str:
    return PROMPT[bool(row.get("input"))].format(instruction=row["instruction"], input=row.get("input", ""))


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ZooError(f"instruction file {path} does not exist; fix: give an existing .json or .jsonl path in params.dataset")
    text = path.read_text()
    try:
        rows = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise ZooError(f"{path}: not valid JSON ({e}); fix: one object per line with instruction/input/output") from e
    bad = next((i for i, r in enumerate(rows) if not (isinstance(r, dict) and "instruction" in r and "output" in r)), None)
    if bad is not None:
        raise ZooError(f"{path}: row {bad + 1} lacks 'instruction' or 'output'; fix: Alpaca rows (instruction, input, output)")
    return rows


def load(name: str, recipe_dir: Path) -> Instructions:
    if name in HUB:
        from datasets import load_dataset

        try:
            ds = load_dataset(HUB[name], split="train")
        except Exception as e:  # offline, gated, renamed: datasets raises many types
            raise ZooError(
                f"cannot load instruction dataset {name!r} ({HUB[name]}): {type(e).__name__}: {str(e).splitlines()[0][:200]}; "
                "fix: run where the Hub is reachable, or set params.dataset to a local .jsonl of Alpaca rows"
            ) from e
        rows = [{k: r[k] for k in ("instruction", "input", "output")} for r in ds]
        return Instructions(rows, {"source": HUB[name], "fingerprint": getattr(ds, "_fingerprint", None), "rows": len(rows)})
    path = BUILTIN if name == "builtin" else recipe_dir / name
    rows = _read(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Instructions(rows, {"source": "builtin" if name == "builtin" else str(path), "sha256": digest, "rows": len(rows)})


def tokenize(rows: list[dict[str, str]], tokenizer: Any, max_len: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per row: BOS + prompt + response + EOS, labels -100 on the prompt.

    The prompt keeps at most three quarters of ``max_len`` and the response at most the last quarter
    (QLoRA's 384 + 128 split of 512); rows with nothing left to learn are dropped."""
    out = []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    for row in rows:
        source = bos + tokenizer(prompt(row), add_special_tokens=False)["input_ids"][: max_len * 3 // 4]
        target = (tokenizer(row["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])[
            : max_len - max_len * 3 // 4
        ]
        if target:
            out.append((source + target, [-100] * len(source) + target))
    return out


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0]


def make_builtin(path: Path = BUILTIN) -> int:
    """Write the shipped file from the tiny bases' training text: two rows per documentation topic."""
    from pydoc_data.topics import topics

    from zoo.tiny.corpus import _split

    rows = []
    for key, text in sorted(topics.items()):
        paras = [p.strip() for p in _split(text)[0].split("\n\n") if len(p.strip()) > 80 and not p.startswith(" ")]
        if len(paras) < 2:
            continue
        rows.append(
            {"instruction": f'What does the Python documentation say about "{key}"?', "input": "", "output": _cut(paras[0], 400)}
        )
        sentence = paras[1].split(". ")[0].rstrip(".") + "."
        rows.append({"instruction": "Give the first sentence of this passage.", "input": _cut(paras[1], 300), "output": sentence})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    print(f"{make_builtin()} rows -> {BUILTIN}")
