"""IR-QLoRA (Qin et al. 2024, arXiv 2402.05445): information calibration quantization of the NF4 base
(per-block entropy-maximising tau search) plus information elastic connection in the adapters."""

from zoo.methods.base import MethodSpec
from zoo.methods.qlora import LoRAParams


class IRQLoRAParams(LoRAParams):
    tau_range: float = 0.1
    tau_steps: int = 100
    elastic_connection: bool = True


SPEC = MethodSpec(
    name="irqlora",
    title="IR-QLoRA",
    paper="Qin et al. 2024, Accurate LoRA-Finetuning Quantization of LLMs via Information Retention, arXiv 2402.05445",
    params=IRQLoRAParams,
    weight_bits=(4,),
    per_channel=False,
    symmetric=True,
    formats=("adapter",),
)
