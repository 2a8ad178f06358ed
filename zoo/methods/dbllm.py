"""DB-LLM (Chen et al. 2024, arXiv 2402.11960): flexible dual binarization at 2 bits, optionally with
deviation-aware distillation."""

from zoo.methods.base import MethodParams, MethodSpec


class DBLLMParams(MethodParams):
    distillation: bool = False


SPEC = MethodSpec(
    name="dbllm",
    title="DB-LLM",
    paper="Chen et al. 2024, DB-LLM: Accurate Dual-Binarization for Efficient LLMs, arXiv 2402.11960",
    params=DBLLMParams,
    weight_bits=(2,),
    per_channel=False,
    symmetric=False,
    formats=("fake",),
)
