"""IR-QLoRA's ICQ and IEC (``zoo/lora/icq.py``, ``zoo/lora/iec.py``) against the authors' code.

Reference: htqin/IR-QLoRA at e6fef4a (``utils.py``, sha256 7397be3e..., identical to Xingyu-Zheng/IR-QLoRA at
de8738a), run unmodified in a scratch directory outside this repository (torch 2.13.0 CPU, bitsandbytes
0.50.2, ``OMP_NUM_THREADS=1``) by a driver that imports their ``utils`` and stubs only
``bnb.nn.Params4bit.cuda`` to ``.to("cpu")`` (their ``nf4_quant`` calls ``.cuda(0)``; bitsandbytes 0.50
quantizes NF4 on the CPU). On the seeded 256 x 512 weight of ``_weight`` below it runs
``utils.search(w, w.shape, compress_statistics=True, quant_type="nf4", device="cpu", tau_range=0.1,
tau_n=100)`` (their ``scripts/finetune.sh``: ``--tau_lambda 0.1 --tau_n 100``), recording the tau of its
final ``nf4_quant`` call (a wrapper around their function) and its stored offsets (``tau1``, ``tau2``); the
dequantized weight is read through their ``IRQLoraLinear4bit.forward`` with the adapters disabled and
x = I (out = W_hat^T). IEC: the same forward with ``lora_A`` / ``lora_B`` the seeded Linears of ``_lora``,
``lora_default_A_scale`` 0.7, ``lora_default_B_scale`` -0.3, scaling 2, identity dropout, minus the
adapter-disabled output. Command: ``OMP_NUM_THREADS=1 /work/main/.venv/bin/python drive.py`` in
/tmp/ref/irqlora. Saved in ``tests/fixtures/parity_irqlora.safetensors``: their exact per-block tau (2048),
their 8-bit offset codes and per-256 maxima, and the IEC branch output.

Their figures (AUTHORS): 201 candidates, mean code entropy 2.984896 bits after calibration (2.864131 for plain
NF4), reconstruction MSE 7.70799e-05 (3.74439e-05 for plain NF4: on this heavy-tailed weight the entropy
criterion costs MSE), tau mean -0.00573429, std 0.01239525.

One difference kept on purpose (see ``zoo/lora/icq.py``): the authors quantize ``w - tau`` around the exact
tau and dequantize with the 8-bit stored one; zoo quantizes around the stored tau. Hence zoo's codes'
entropy is 2.9736 (within 0.4%) while around the exact tau it is the authors' to the bit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from zoo.lora import icq, iec, nf4  # noqa: E402

FIXTURE = Path(__file__).with_name("fixtures") / "parity_irqlora.safetensors"

AUTHORS = {
    "entropy": 2.984895944595337,
    "entropy_plain": 2.864131212234497,
    "mse": 7.707985059823841e-05,
    "mse_plain": 3.744387504411861e-05,
    "tau_mean": -0.005734290927648544,
    "tau_std": 0.012395246885716915,
    "iec_sum": 70.74036759883165,
    "iec_sum_sq": 2221.0166232349857,
}


def _weight():  # noqa: ANN202
    """Heavy-tailed and skewed: a log-normal scale mixture, 0.5% outliers at 20x, a chi-square term."""
    g = torch.Generator().manual_seed(18)
    z = torch.randn(256, 512, generator=g)
    scale = torch.exp(0.5 * torch.randn(256, 512, generator=g))
    outlier = torch.where(torch.rand(256, 512, generator=g) < 0.005, 20.0, 1.0)
    return 0.02 * (z * scale * outlier + 0.25 * (z * z - 1))


def _lora():  # noqa: ANN202
    g = torch.Generator().manual_seed(19)
    a = torch.nn.Linear(512, 8, bias=False)
    b = torch.nn.Linear(8, 256, bias=False)
    a.weight.data = torch.randn(8, 512, generator=g) * 0.05
    b.weight.data = torch.randn(256, 8, generator=g) * 0.05
    return a, b, torch.randn(3, 5, 512, generator=g)


@pytest.fixture(scope="module")
def ref():  # noqa: ANN201
    from safetensors.torch import load_file

    return load_file(str(FIXTURE))


def test_tau_search_picks_the_authors_offsets_or_an_exact_tie(ref) -> None:  # noqa: ANN001
    w = _weight()
    tau = icq.search_tau(w, 64, tau_range=0.1, steps=100)
    b = nf4.blocks(w, 64)
    ours = nf4.block_entropy(nf4.codes_only(b - tau[:, None]))
    theirs = nf4.block_entropy(nf4.codes_only(b - ref["tau"][:, None]))
    # Every block picks the authors' offset or another candidate whose codes have exactly the same entropy:
    # which of two tied candidates wins is decided by float summation order, so how many blocks pick the
    # very same tau depends on the machine and its thread count (2019 and 1999 of 2048 were both seen);
    # the entropy each block reaches does not.
    differ = tau != ref["tau"]
    assert torch.allclose(ours[differ], theirs[differ], atol=1e-6), "a block chose an offset that is not a tie"
    assert float(theirs.mean()) == pytest.approx(AUTHORS["entropy"], abs=1e-6)
    assert float(tau.mean()) == pytest.approx(AUTHORS["tau_mean"], rel=0.05)
    assert float(tau.std()) == pytest.approx(AUTHORS["tau_std"], rel=0.05)


def test_offsets_are_stored_as_the_authors_store_them(ref) -> None:  # noqa: ANN001
    stored = nf4.quantize8(ref["tau"], centre=False)
    assert torch.equal(stored.codes, ref["tau_codes"])
    assert torch.equal(stored.scales, ref["tau_absmax"])


def test_calibrated_weight_is_within_5_percent_of_the_authors(ref) -> None:  # noqa: ANN001
    w = _weight()
    c = icq.quantize(w, 64, double_quant=True, tau_range=0.1, steps=100)
    mse = float(((c.dequantize() - w) ** 2).mean())
    assert mse == pytest.approx(AUTHORS["mse"], rel=0.05)
    entropy = float(nf4.block_entropy(c.quantized.codes).mean())  # around the stored offsets (zoo's choice)
    assert entropy == pytest.approx(AUTHORS["entropy"], rel=0.05)
    assert entropy > AUTHORS["entropy_plain"]
    plain = nf4.quantize(w, 64, double_quant=True)
    assert float(((plain.dequantize() - w) ** 2).mean()) == pytest.approx(AUTHORS["mse_plain"], rel=0.05)
    assert float(nf4.block_entropy(plain.codes).mean()) == pytest.approx(AUTHORS["entropy_plain"], abs=1e-6)


def test_elastic_connection_forward_equals_the_authors(ref) -> None:  # noqa: ANN001
    elastic_a, elastic_b = iec._modules()
    a, b, x = _lora()
    ea, eb = elastic_a(a, torch.nn.Identity()), elastic_b(b)
    ea.beta.data.fill_(0.7)
    eb.beta.data.fill_(-0.3)
    with torch.no_grad():
        out = eb(ea(x)) * 2.0  # peft's scaling, outside lora_B
        assert torch.allclose(out, ref["iec_branch"], atol=1e-5)
        assert float(out.double().sum()) == pytest.approx(AUTHORS["iec_sum"], rel=1e-4)
        assert float((out.double() ** 2).sum()) == pytest.approx(AUTHORS["iec_sum_sq"], rel=1e-5)
        # folded into plain LoRA weights, the same output
        folded = torch.nn.functional.linear(torch.nn.functional.linear(x, ea.folded()), eb.folded()) * 2.0
        assert torch.allclose(folded, ref["iec_branch"], atol=1e-5)
