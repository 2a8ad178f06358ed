"""Layer-by-layer simulated quantization for the methods zoo implements itself (the study's
ultra-low-bit methods, which no maintained library has).

The calibration windows run through the model one decoder layer at a time, as GPTQ's reference
code does: the inputs to layer 0 are captured once, each layer is moved to the compute device, the
Hessian proxy H = 2/n sum(x x^T) of every Linear's input is accumulated, each Linear's weight is
replaced by the method's dequantized result, and the quantized layer's outputs become the next
layer's inputs. Accelerator memory is one layer plus activations. The checkpoint is saved in 16-bit
("fake" quantization, like the study's own) with ``quantization.json`` giving the scheme and the
measured average bits per weight; beside it, the packed checkpoint of the methods' own codes (``zoo.packed``).

H is normalized per token (its trace does not grow with the calibration length); GPTQ's reference code and
the GPTQ-based methods' (BiLLM, PB-LLM, SliM-LLM) average over sequences instead, a (tokens per sequence)
times larger H. Only an absolute constant added to H tells the two apart (relative dampening and salience
rankings do not): a method with one asks ``Hessian.per_sequence`` (SliM-LLM's authors' variant does).

A method whose per-Linear step must see the layer's inputs (SliM-LLM scores its candidates on the
calibration outputs) passes a ``StepFn`` to ``run_steps``: after the Hessian pass and before any weight of
the layer changes, the layer runs once more over the windows and each step's observer sees its Linear's
input and output on every window, as the authors' second pass does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoo.methods.base import BuildContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quantized:
    """One Linear's result: the dequantized weight and what storing it costs.

    ``code_bits`` counts the codes alone (what the papers' "W2" / "1.1-bit" names count);
    ``bits`` adds every scale, zero point, mask and bitmap needed to decode them. ``layout`` says how the
    codes decode (``zoo.packed.codec``): the packed checkpoint is written from it."""

    weight: Any  # torch.Tensor, same shape as the original
    bits: float
    code_bits: float
    layout: dict[str, Any] | None = None


WeightFn = Callable[[Any, Any], Quantized]  # (W float32 [out, in], H float32 [in, in]) -> Quantized
RecordFn = Callable[[Any, Quantized], None]  # (the nn.Linear, its result) once its weight is replaced
Observe = Callable[[Any, Any], None]  # one window's input [tokens, in] and output [tokens, out] of a Linear
Finish = Callable[[], Quantized]  # the Linear's result, once every window has been observed
StepFn = Callable[[Any, "Hessian"], tuple[Observe | None, Finish]]  # (the nn.Linear, its H) -> the two


def _capture(model: Any, layers: Any, windows: list[list[int]], device: str) -> tuple[list[Any], dict[str, Any]]:
    """Inputs (hidden states and keyword arguments) that reach the first decoder layer."""
    import torch

    inputs: list[Any] = []
    kwargs: dict[str, Any] = {}

    class Stop(Exception):
        pass

    first = layers[0]

    def hook(module: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        inputs.append(args[0] if args else kw["hidden_states"])
        kwargs.update({k: v for k, v in kw.items() if k != "hidden_states"})
        raise Stop

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for w in windows:
                try:
                    model(input_ids=torch.tensor([w], device=device), use_cache=False)
                except Stop:
                    pass
    finally:
        handle.remove()
    return inputs, kwargs


class Hessian:
    """H = 2/n sum(x x^T) over every input row a Linear has seen, accumulated in fp32."""

    def __init__(self, n: int, device: str) -> None:
        import torch

        self.h = torch.zeros(n, n, device=device)
        self.count = 0  # input rows (tokens)
        self.sequences = 0  # forward calls: one calibration window each

    def per_sequence(self) -> Any:
        """H as GPTQ's reference ``add_batch`` holds it, 2/sequences sum(x x^T): (tokens per sequence) x ``h``."""
        return self.h * (self.count / max(self.sequences, 1))

    def hook(self, module: Any, args: tuple[Any, ...], out: Any) -> None:
        x = args[0].reshape(-1, args[0].shape[-1]).float()
        n = x.shape[0]
        self.sequences += args[0].shape[0] if args[0].dim() == 3 else 1
        self.h *= self.count / (self.count + n)
        self.count += n
        x = x * (2 / self.count) ** 0.5
        self.h += x.t() @ x


def _hidden(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


def run(ctx: BuildContext[Any], quantize: WeightFn, scheme: dict[str, Any]) -> dict[str, Any]:
    """Quantize every decoder Linear of ``ctx``'s model with ``quantize`` and save the checkpoint."""
    return save(ctx, *quantize_layers(ctx, plain(quantize)), scheme)


def run_steps(ctx: BuildContext[Any], step: StepFn, scheme: dict[str, Any]) -> dict[str, Any]:
    """``run`` for a method whose per-Linear step observes the layer's calibration inputs (``StepFn``)."""
    return save(ctx, *quantize_layers(ctx, step), scheme)


def plain(quantize: WeightFn) -> StepFn:
    """A ``WeightFn`` as a step that observes nothing (W read when it runs, as before steps existed)."""
    return lambda module, hessian: (None, lambda: quantize(module.weight.data.float(), hessian.h))


def replay(layer: Any, linears: dict[str, Any], observers: dict[str, Observe], inputs: list[Any], kwargs: dict[str, Any]) -> None:
    """One more pass of the (still unquantized) layer over the windows ``inputs``, each observer seeing the input
    and output rows of its Linear in ``linears`` on every window."""
    import torch

    def hook(observe: Observe) -> Any:
        return lambda m, args, out: observe(args[0].reshape(-1, args[0].shape[-1]), out.reshape(-1, out.shape[-1]))

    handles = [linears[n].register_forward_hook(hook(o)) for n, o in observers.items()]
    try:
        with torch.no_grad():
            for x in inputs:
                layer(x, **kwargs)
    finally:
        for h in handles:
            h.remove()


def quantize_layers(ctx: BuildContext[Any], step: StepFn, record: RecordFn | None = None) -> tuple[Any, float, float]:
    """The layer-by-layer pass alone: the model (on the host, every decoder Linear quantized), its bits and
    code bits per weight. ``step`` is the method's per-Linear step (``plain(quantize)`` for one that needs only
    W and H). ``record`` sees each Linear with its result, for a method that trains on after the pass (DB-LLM's
    distillation keeps the binary codes); ``run`` is this pass and ``save``."""
    import torch

    from zoo.progress import reporter

    model = ctx.load_model()
    model.config.use_cache = False
    dev = ctx.device
    inner = ctx.family.language_model(model)
    layers = inner.layers
    # everything before the first layer (embeddings, rotary) computes on the device
    for m in (inner.embed_tokens, inner.rotary_emb):
        m.to(dev)
    inputs, kwargs = _capture(model, layers, ctx.data.windows, dev)
    inner.embed_tokens.to("cpu")
    total_bits, code_bits, total_weights = 0.0, 0.0, 0
    tick = reporter(f"{ctx.recipe.name} layers")
    for index, layer in enumerate(layers):
        layer.to(dev)
        linears = {n: m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
        hessians = {n: Hessian(m.in_features, dev) for n, m in linears.items()}
        handles = [m.register_forward_hook(hessians[n].hook) for n, m in linears.items()]
        with torch.no_grad():
            for x in inputs:
                layer(x, **kwargs)
        for h in handles:
            h.remove()
        # each Hessian handed over, not kept beside what its step derives from it (SliM-LLM's scaled copy):
        # a layer's Linears hold their Hessians once, ~5 GB less on a 70B layer than with both alive
        plans = {n: step(m, hessians.pop(n)) for n, m in linears.items()}
        observers = {n: o for n, (o, _) in plans.items() if o is not None}
        if observers:
            replay(layer, linears, observers, inputs, kwargs)
        for name, module in linears.items():
            result = plans[name][1]()
            module.weight.data = result.weight.to(module.weight.dtype)
            if result.layout is not None:  # its codes, for the packed checkpoint ``save`` writes beside the fake one
                from zoo.packed import store

                module._zoo_packed = store.hold(result.layout, module.weight.data, result.weight)
            if record is not None:
                record(module, result)
            total_bits += result.bits
            code_bits += result.code_bits
            total_weights += module.weight.numel()
        with torch.no_grad():
            inputs = [_hidden(layer(x, **kwargs)) for x in inputs]
        layer.to("cpu")
        del hessians, plans, observers
        tick(index + 1, len(layers))
    inner.rotary_emb.to("cpu")
    return model, total_bits / total_weights, code_bits / total_weights


def save(ctx: BuildContext[Any], model: Any, bits: float, code: float, scheme: dict[str, Any]) -> dict[str, Any]:
    """Write the 16-bit ("fake") checkpoint and ``quantization.json``; the method info for build.json."""
    model.save_pretrained(ctx.out)
    ctx.processor.save_pretrained(ctx.out)
    from zoo.records import write_quantization

    fields = {"code_bits_per_weight": round(code, 4), "bits_per_weight": round(bits, 4), **scheme}
    record = write_quantization(ctx.out, ctx.recipe.method, "fake", fields)
    from zoo.packed import store

    store.write(ctx.out, model, {k: v for k, v in record.items() if k != "format"})
    log.info(
        "%s: %.3f code bits, %.3f bits per weight with metadata (recipe: %g)",
        ctx.recipe.name,
        code,
        bits,
        ctx.recipe.weights.bits,
    )
    return {"backend": "zoo", "code_bits_per_weight": round(code, 4), "bits_per_weight": round(bits, 4)}
