"""QLoRA and IR-QLoRA: the 4-bit NormalFloat base, LoRA training on it, and loading the result.

``nf4.py`` the NF4 quantizer (codebook, double quantization, code entropy) · ``icq.py`` IR-QLoRA's
entropy-maximising block offsets · ``quantized.py`` puts an NF4 base in place (bitsandbytes or torch)
· ``iec.py`` IR-QLoRA's elastic connections and their exact folding · ``train.py`` the resumable
training loop · ``build.py`` the build both methods share · ``load.py`` base + adapter for eval and users.

A new LoRA-style method is a file in ``zoo/methods/`` whose ``quantize`` calls ``build.run`` with its
own quantizer or adapter hooks, plus one line in ``zoo.methods.METHODS``.
"""
