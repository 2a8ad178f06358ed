"""PB-LLM (Shang et al. 2023, arXiv 2310.00034): partial binarization, salient weights kept at 8 bits."""

from pydantic import Field

from zoo.methods.base import MethodParams, MethodSpec


class PBLLMParams(MethodParams):
    salient_fraction: float = Field(0.1, ge=0, le=0.5)
    salient_bits: int = 8
    salient_metric: str = "hessian"


SPEC = MethodSpec(
    name="pbllm",
    title="PB-LLM",
    paper="Shang et al. 2023, PB-LLM: Partially Binarized Large Language Models, arXiv 2310.00034",
    params=PBLLMParams,
    weight_bits=(1.7, 2),
    per_channel=False,
    symmetric=True,
    formats=("fake",),
)
