"""zoo's packed checkpoints of its native methods (QuIP, PB-LLM, DB-LLM, BiLLM, SliM-LLM): the codes, tables,
grids, masks and rotation seeds each method produced, instead of their 16-bit dequantization.

``codec`` encodes and decodes one Linear (bit-identical to the fake checkpoint), ``bits`` packs integers tightly,
``store`` writes the packed folder at build time and unpacks it (``zoo unpack``), ``hf`` runs it in transformers.
Importing this package registers the ``zoo`` quant_method with transformers when transformers is installed
(``AutoModelForCausalLM.from_pretrained`` on a packed folder then decodes each Linear's weight in its forward).
The layout is documented in ``docs/packed.md``.
"""

from __future__ import annotations

FORMAT = "zoo-packed"
VERSION = 2  # 2: DB-LLM's "dual" rule (three levels and a correction; 1 stored four levels)
READS = (1, 2)  # a version-1 folder decodes unchanged


def register() -> bool:
    """Register zoo's quantizer with transformers (idempotent); False when transformers is not installed."""
    try:
        from zoo.packed.hf import register as hf_register
    except ImportError:
        return False
    hf_register()
    return True


register()
