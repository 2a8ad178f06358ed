"""BiLLM (Huang et al. 2024, arXiv 2402.04291): residual binarization of salient columns and a
bell-shaped split of the rest into two binarized groups; about 1.1 bits per weight."""

from zoo.methods.base import MethodParams, MethodSpec


class BiLLMParams(MethodParams):
    salient_metric: str = "hessian"
    split_search_points: int = 40


SPEC = MethodSpec(
    name="billm",
    title="BiLLM",
    paper="Huang et al. 2024, BiLLM: Pushing the Limit of Post-Training Quantization for LLMs, arXiv 2402.04291",
    params=BiLLMParams,
    weight_bits=(1.1,),
    per_channel=False,
    symmetric=True,
    formats=("fake",),
)
