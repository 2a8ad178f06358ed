"""The stage records: ``build.json``, ``eval.json``, ``bench.json``, ``card.json``, ``push.json`` and the
cached baselines, as typed, versioned models, one module each (``base`` holds what they share).

Each record is written and read only through its class, so a field has one name and one type for every
stage that reads it (eval, card, push, release, the tests). ``recipe`` holds the recipe's hash and the
check every stage after the build makes with it; ``quantization`` the one writer of a checkpoint's
``quantization.json``. Import from ``zoo.records``; the modules are its parts.
"""

from zoo.records.base import SCHEMA_VERSION, FileEntry, Record, file_entries, remember_verified
from zoo.records.baseline import Baseline, BaselineRecord, Measurement
from zoo.records.bench import BenchRecord, RuntimeCheck, Speed
from zoo.records.build import BuildRecord
from zoo.records.card import CardRecord
from zoo.records.eval import EvalRecord, Gate
from zoo.records.export import ExportRecord
from zoo.records.push import PushRecord
from zoo.records.quantization import read_quantization, write_quantization
from zoo.records.recipe import check_recipe, is_built, recipe_sha256

__all__ = [
    "SCHEMA_VERSION",
    "Baseline",
    "BaselineRecord",
    "BenchRecord",
    "BuildRecord",
    "CardRecord",
    "EvalRecord",
    "ExportRecord",
    "FileEntry",
    "Gate",
    "Measurement",
    "PushRecord",
    "Record",
    "RuntimeCheck",
    "Speed",
    "check_recipe",
    "file_entries",
    "is_built",
    "read_quantization",
    "recipe_sha256",
    "remember_verified",
    "write_quantization",
]
