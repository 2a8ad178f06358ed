"""zoo: build, evaluate, card and publish quantized LLaMA-3 / LLaVA-Next checkpoints from recipes.

What lives where:
  recipe/      the recipe schema, YAML loading with ``extends:``, and checks that report every problem
  methods/     one file per quantization method, registered in ``methods/__init__.py``
  families/    one file per model family (what to quantize, what to keep), registered likewise
  data/        calibration and perplexity datasets by name
  evaluation/  evaluation tasks by name
  tiny/        the built-in tiny bases (tiny-llama3, tiny-llava-next) and the script that made them
  catalog.py   finding recipes on disk and listing them
  cli.py       the click commands, each a thin call into one library function
"""

__version__ = "0.1.0"
