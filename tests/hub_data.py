"""Dataset repos for the Hub-protocol test server, in the layouts the Hub serves them today, a few rows
each in the real schema: WikiText2 (Parquet with a README ``configs:`` section), C4 (GPTQ's json.gz
shards), and PTB (a loading script on main, which ``datasets`` >= 4 refuses, and the Hub's Parquet
export on ``refs/convert/parquet``)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from tests.hub_server import HubServer

WIKITEXT_README = b"""---
configs:
- config_name: wikitext-2-raw-v1
  data_files:
  - split: train
    path: wikitext-2-raw-v1/train-*
  - split: validation
    path: wikitext-2-raw-v1/validation-*
  - split: test
    path: wikitext-2-raw-v1/test-*
---
# WikiText (stand-in)
"""
# Long enough for a few perplexity windows of 128 tokens on a rehearsal's shrunk base.
WIKI_TEST = ["", " = Robert Boulter = \n", "", " Robert Boulter is an English film and television actor . \n"] * 30
PTB_TEST = ["no it was n't black monday", "but while the new york stock exchange did n't fall apart"] * 30
C4_VALIDATION = ["Beginners BBQ Class Taking Place in Missoula!", "Discussion in 'Mac OS X Lion (10.7)' started by axboi87"] * 30
HELLASWAG = {
    "ind": [24, 92], "activity_label": ["Roof shingle removal", "Clean and jerk"],
    "ctx_a": ["A man is sitting on a roof.", "A lady walks to a barbell."],
    "ctx_b": ["he", "she"], "ctx": ["A man is sitting on a roof. he", "A lady walks to a barbell. she"],
    "endings": [["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.",
                 "starts pulling up roofing on a roof."],
                ["swings and lands in her arms.", "pulls the barbell forward.", "pulls a rope attached to the barbell.",
                 "stands and lifts the weight over her head."]],
    "source_id": ["activitynet~v_-JhWjGDPHMY", "activitynet~v_-lJS58hyo1c"], "split": ["val", "val"],
    "split_type": ["zeroshot", "indomain"], "label": ["3", "3"],
}  # fmt: skip
WINOGRANDE = {
    "sentence": ["Sarah was a much better surgeon than Maria so _ always got the harder cases.",
                 "Sarah was a much better surgeon than Maria so _ always got the easier cases."],
    "option1": ["Sarah", "Sarah"], "option2": ["Maria", "Maria"], "answer": ["1", "2"],
}  # fmt: skip
MMLU = {
    "question": ["Find the degree for the given field extension Q(sqrt(2)) over Q.", "Let p = (1, 2, 5, 4)(2, 3) in S_5."],
    "subject": ["abstract_algebra", "abstract_algebra"],
    "choices": [["0", "4", "2", "6"], ["8", "2", "24", "120"]],
    "answer": [2, 2],
}  # fmt: skip


def mmlu_subjects() -> list[str]:
    """The subjects lm-eval's MMLU group reads (one config each), from its own task files."""
    import lm_eval
    import yaml

    folder = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    return sorted(yaml.safe_load(p.read_text())["dataset_name"] for p in folder.glob("mmlu_*.yaml"))


def parquet(column: str, rows: list[str]) -> bytes:
    return table({column: rows})


def table(columns: dict[str, list[object]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


def configs(name: str, splits: tuple[str, ...]) -> bytes:
    """A dataset card whose ``configs:`` section maps each split to its Parquet file, as the Hub's do."""
    lines = ["---", "configs:", f"- config_name: {name}", "  data_files:"]
    for s in splits:
        lines += [f"  - split: {s}", f"    path: {name}/{s}-*"]
    return ("\n".join([*lines, "---", f"# {name} (stand-in)", ""])).encode()


ARC = {
    "id": ["Mercury_7175875", "Mercury_SC_409171"],
    "question": ["An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect?",
                 "Which of these do scientists offer as the most recent explanation as to why many plants and animals died out?"],
    "choices": [{"text": ["Planetary density will decrease.", "Planetary years will become longer.",
                          "Planetary days will become shorter.", "Planetary gravity will become stronger."],
                 "label": ["A", "B", "C", "D"]},
                {"text": ["worldwide disease", "global mountain building", "rise of mammals", "impact of an asteroid"],
                 "label": ["A", "B", "C", "D"]}],
    "answerKey": ["C", "D"],
}  # fmt: skip
PIQA = {
    "goal": ["How do I ready a guinea pig cage for it's new occupants?", "dresser"],
    "sol1": ["Provide the guinea pig with a cage full of a few inches of bedding.", "replace drawer with bobby pin"],
    "sol2": ["Provide the guinea pig with a cage full of a few inches of paper.", "finish, woodgrain with  bobby pin"],
    "label": [0, 1],
}


def jsonl_gz(rows: list[str]) -> bytes:
    lines = "".join(json.dumps({"text": t, "timestamp": "2019-04-25T12:57:54Z", "url": "https://example.com"}) + "\n" for t in rows)
    return gzip.compress(lines.encode())


def add_datasets(server: HubServer) -> None:
    state = server.state
    state.craft("datasets/Salesforce/wikitext", {
        "README.md": WIKITEXT_README,
        "wikitext-2-raw-v1/train-00000-of-00001.parquet": parquet("text", ["", " = Valkyria Chronicles III = \n", " Senjō no Valkyria 3 . \n"] * 40),
        "wikitext-2-raw-v1/validation-00000-of-00001.parquet": parquet("text", ["", " = Homarus gammarus = \n"]),
        "wikitext-2-raw-v1/test-00000-of-00001.parquet": parquet("text", WIKI_TEST),
    })  # fmt: skip
    state.craft("datasets/allenai/c4", {
        "en/c4-train.00000-of-01024.json.gz": jsonl_gz(["Those who do not learn from history are doomed to repeat it."] * 40),
        "en/c4-validation.00000-of-00008.json.gz": jsonl_gz(C4_VALIDATION),
    })  # fmt: skip
    arc: dict[str, bytes] = {}
    readme = [b"---", b"configs:"]
    for name in ("ARC-Easy", "ARC-Challenge"):
        readme += configs(name, ("train", "validation", "test")).split(b"\n")[2:-3]  # its config entry
        for split in ("train", "validation", "test"):
            arc[f"{name}/{split}-00000-of-00001.parquet"] = table(ARC)
    arc["README.md"] = b"\n".join([*readme, b"---", b"# ai2_arc (stand-in)", b""])
    state.craft("datasets/allenai/ai2_arc", arc)
    piqa = {f"data/{s}-00000-of-00001.parquet": table(PIQA) for s in ("train", "validation")}
    state.craft("datasets/baber/piqa", piqa)
    state.craft("datasets/Rowan/hellaswag", {f"data/{s}-00000-of-00001.parquet": table(HELLASWAG) for s in ("train", "validation")})
    wino = {f"winogrande_xl/{s}-00000-of-00001.parquet": table(WINOGRANDE) for s in ("train", "validation")}
    state.craft("datasets/allenai/winogrande", {**wino, "README.md": configs("winogrande_xl", ("train", "validation"))})
    mmlu: dict[str, bytes] = {}
    readme = [b"---", b"configs:"]
    for subject in mmlu_subjects():
        readme += configs(subject, ("test", "validation", "dev")).split(b"\n")[2:-3]
        for split in ("test", "validation", "dev"):
            mmlu[f"{subject}/{split}-00000-of-00001.parquet"] = table({k: v * 3 for k, v in MMLU.items()})  # 5-shot
    mmlu["README.md"] = b"\n".join([*readme, b"---", b"# mmlu (stand-in)", b""])
    state.craft("datasets/cais/mmlu", mmlu)
    state.craft("datasets/ptb-text-only/ptb_text_only", {
        "ptb_text_only.py": b"import datasets\n\nclass PtbTextOnly(datasets.GeneratorBasedBuilder):\n    pass\n",
        "README.md": b"# Penn Treebank (stand-in)\n",
    })  # fmt: skip
    state.craft("datasets/ptb-text-only/ptb_text_only", {
        "penn_treebank/train/0000.parquet": parquet("sentence", ["aer banknote berlitz calloway centrust"] * 40),
        "penn_treebank/validation/0000.parquet": parquet("sentence", ["consumers may want to move their telephones"]),
        "penn_treebank/test/0000.parquet": parquet("sentence", PTB_TEST),
    }, branch="refs/convert/parquet")  # fmt: skip
