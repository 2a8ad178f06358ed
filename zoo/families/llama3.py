"""LLaMA-3 (8B, 70B and the built-in tiny-llama3): every decoder Linear is quantized, lm_head is kept."""

from zoo.families.base import FamilySpec

SPEC = FamilySpec(
    name="llama3",
    title="LLaMA-3",
    auto_class="AutoModelForCausalLM",
    pipeline_tag="text-generation",
    decoder_layer="LlamaDecoderLayer",
    multimodal=False,
    ignore=("lm_head",),
    card="llama3",
)
