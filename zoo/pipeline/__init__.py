"""The pipeline: the release's stages in order (``stages.py``) and how a run goes (``options.py``).

``zoo build|eval|bench`` run one stage, ``zoo release`` every stage, ``zoo rehearse`` all but the bench
and the Collection on a shrunk base; all of them through the same ``RunOptions`` and the same list, so
a stage has one signature (recipe, layout, options) wherever it runs. The device rule is ``zoo.device``.
"""

from zoo.pipeline.options import RunOptions

__all__ = ["RunOptions"]
