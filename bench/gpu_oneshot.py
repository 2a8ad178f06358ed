"""The plain llm-compressor script zoo build is measured against: what a user writes from
llm-compressor's examples for the same scheme, with nothing of zoo imported.

Run by bench/gpu.py as its own process: python bench/gpu_oneshot.py SCHEME MODEL OUT WINDOWS.pt RESULT.json
SCHEME is gptq (W4 g128 asymmetric), awq (W4 g128 asymmetric, default mappings), rtn (W8 per channel,
no calibration) or smoothquant (strength 0.5, then W8 per channel symmetric and 8-bit dynamic per-token
activations), the study's settings that zoo's catalog recipes resolve to. The same calibration windows
zoo draws come in as token ids. RESULT.json gets the in-process peak GPU memory.
"""

import json
import sys

import torch
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
from transformers import AutoModelForCausalLM, AutoTokenizer


def modifiers(scheme: str) -> list:
    w4 = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=128)
    w8 = QuantizationArgs(num_bits=8, type="int", symmetric=scheme == "smoothquant", strategy="channel")
    a8 = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="token", dynamic=True)

    def groups(weights: QuantizationArgs, acts: QuantizationArgs | None = None) -> dict:
        return {"group_0": QuantizationScheme(targets=["Linear"], weights=weights, input_activations=acts)}

    if scheme == "gptq":
        return [GPTQModifier(config_groups=groups(w4), ignore=["lm_head"], dampening_frac=0.01, block_size=128, actorder=None)]
    if scheme == "awq":
        from llmcompressor.modifiers.transform.awq import AWQModifier

        return [AWQModifier(duo_scaling=True, n_grid=20), QuantizationModifier(config_groups=groups(w4), ignore=["lm_head"])]
    if scheme == "rtn":
        return [QuantizationModifier(config_groups=groups(w8), ignore=["lm_head"])]
    if scheme == "smoothquant":
        from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

        smooth = SmoothQuantModifier(smoothing_strength=0.5)
        return [smooth, QuantizationModifier(config_groups=groups(w8, a8), ignore=["lm_head"])]
    raise SystemExit(f"unknown scheme {scheme!r}")


def main() -> None:
    scheme, path, out, windows_file, result = sys.argv[1:6]
    if not torch.cuda.is_available():  # llm-compressor pins cached activations, which needs an accelerator
        from llmcompressor.pipelines.cache import IntermediatesCache

        IntermediatesCache.pin_memory = lambda self, *a, **k: None
    model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    tok = AutoTokenizer.from_pretrained(path)
    if scheme == "rtn":
        oneshot(model=model, recipe=modifiers(scheme), pipeline="datafree")
    else:
        windows = torch.load(windows_file).tolist()
        ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
        oneshot(model=model, dataset=ds, recipe=modifiers(scheme), num_calibration_samples=len(windows),
                max_seq_length=len(windows[0]), shuffle_calibration_samples=False)  # fmt: skip
    model.save_pretrained(out, save_compressed=True)
    tok.save_pretrained(out)
    peak = int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    with open(result, "w") as f:
        json.dump({"peak_gpu_bytes": peak}, f)


if __name__ == "__main__":
    main()
