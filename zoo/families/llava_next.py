"""LLaVA-Next (llama3-llava-next-8b and tiny-llava-next): only the LLaMA-3 language model is
quantized, as in the study; the vision tower, projector and lm_head stay in 16-bit."""

from zoo.families.base import FamilySpec

SPEC = FamilySpec(
    name="llava-next",
    title="LLaVA-Next",
    auto_class="AutoModelForImageTextToText",
    pipeline_tag="image-text-to-text",
    decoder_layer="LlamaDecoderLayer",
    multimodal=True,
    ignore=("lm_head", "re:.*vision_tower.*", "re:.*multi_modal_projector.*"),
    card="llava-next",
    lm_scope="language_model",
    lm_path="model.language_model",
)
