"""Recreate the built-in tiny bases from scratch: ``python -m zoo.tiny.make``.

The shipped files under ``zoo/tiny/tiny-llama3`` and ``zoo/tiny/tiny-llava-next`` came from this
script; it is kept so that anyone can check how they were made, or change their shape. It trains a
LLaMA-3-style byte-level BPE tokenizer and a small LLaMA-3-architecture model (GQA, rope_theta 5e5)
on ``pydoc_data.topics`` for a few minutes on a CPU, then gives LLaVA-Next a small CLIP vision tower
and projector. Dimensions suit every method: input sizes are multiples of 128 (group size), output
sizes multiples of 64 (AWQ clipping).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

from zoo.tiny import corpus

log = logging.getLogger("zoo.tiny.make")

HERE = Path(__file__).parent
VOCAB = 2048
# LLaMA-3's special tokens (a subset of its 256), appended after the BPE vocabulary as LLaMA-3 does.
SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<image>",
]
# LLaMA-3's pre-tokenizer split pattern.
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def make_tokenizer(out: Path):  # -> PreTrainedTokenizerBase
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus.train_text()], trainer)
    tok.add_special_tokens(SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        model_max_length=2048,
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(out)
    return fast


def fit(model, opt, sched, ids, steps: int, seq: int, batch: int, seed: int, held=None) -> None:  # noqa: ANN001
    """Train on seeded random windows of ``ids``, logging the held-out loss every 50 steps (both bases)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    start = time.time()
    model.train()
    for step in range(steps):
        starts = torch.randint(0, ids.numel() - seq - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + seq] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                model.eval()
                held_loss = model(input_ids=held, labels=held).loss.item()
                model.train()
            log.info("step %d loss %.3f held-out %.3f (%.0fs)", step, loss.item(), held_loss, time.time() - start)
    model.eval()


def train_llama(out: Path, tokenizer, steps: int, seq: int, batch: int, seed: int) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    ids = torch.tensor(tokenizer(corpus.train_text())["input_ids"], dtype=torch.long)
    held = torch.tensor(tokenizer(corpus.heldout_text())["input_ids"], dtype=torch.long)
    held = held[: held.numel() // seq * seq].view(-1, seq)
    log.info("training tokens: %d", ids.numel())
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    warm = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))

    fit(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at), ids, steps, seq, batch, seed, held)
    model.to(torch.bfloat16).save_pretrained(out)  # type: ignore[arg-type]
    GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        do_sample=True,
        temperature=0.6,
        top_p=0.9,
    ).save_pretrained(out)


def make_llava_parts(out: Path, seed: int) -> None:
    """Vision tower and projector of tiny-llava-next; the language model is tiny-llama3 itself."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlavaNextForConditionalGeneration

    from zoo.tiny.bases import llava_config

    torch.manual_seed(seed)
    full = LlavaNextForConditionalGeneration(llava_config(HERE / "tiny-llama3"))
    state = {
        k: v.to(torch.bfloat16).contiguous()
        for k, v in full.state_dict().items()
        if not k.startswith(("model.language_model", "lm_head"))
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "vision.safetensors"), metadata={"format": "pt"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    llama = HERE / "tiny-llama3"
    tokenizer = make_tokenizer(llama)
    train_llama(llama, tokenizer, args.steps, args.seq, args.batch, args.seed)
    make_llava_parts(HERE / "tiny-llava-next", args.seed)


if __name__ == "__main__":
    main()
