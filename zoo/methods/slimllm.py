"""SliM-LLM (Huang et al. 2024, arXiv 2405.14917): salience-driven mixed precision per group, averaging
the target bit width, with a GPTQ-based quantizer."""

from zoo.methods.base import MethodParams, MethodSpec


class SliMLLMParams(MethodParams):
    bit_candidates: tuple[int, ...] = (1, 2, 3)
    dampening_frac: float = 0.01


SPEC = MethodSpec(
    name="slimllm",
    title="SliM-LLM",
    paper="Huang et al. 2024, SliM-LLM: Salience-Driven Mixed-Precision Quantization for LLMs, arXiv 2405.14917",
    params=SliMLLMParams,
    weight_bits=(2, 3),
    per_channel=False,
    symmetric=False,
    formats=("fake",),
)
