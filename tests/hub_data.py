"""Dataset repos for the Hub-protocol test server, in the layouts the Hub serves them today, a few rows
each in the real schema: WikiText2 (Parquet with a README ``configs:`` section), C4 (GPTQ's json.gz
shards), and PTB (a loading script on main, which ``datasets`` >= 4 refuses, and the Hub's Parquet
export on ``refs/convert/parquet``)."""

from __future__ import annotations

import gzip
import io
import json

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


def parquet(column: str, rows: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({column: rows}), out)
    return out.getvalue()


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
    state.craft("datasets/ptb-text-only/ptb_text_only", {
        "ptb_text_only.py": b"import datasets\n\nclass PtbTextOnly(datasets.GeneratorBasedBuilder):\n    pass\n",
        "README.md": b"# Penn Treebank (stand-in)\n",
    })  # fmt: skip
    state.craft("datasets/ptb-text-only/ptb_text_only", {
        "penn_treebank/train/0000.parquet": parquet("sentence", ["aer banknote berlitz calloway centrust"] * 40),
        "penn_treebank/validation/0000.parquet": parquet("sentence", ["consumers may want to move their telephones"]),
        "penn_treebank/test/0000.parquet": parquet("sentence", PTB_TEST),
    }, branch="refs/convert/parquet")  # fmt: skip
