"""The quantization stage (``zoo build``): ``run.py`` (recipe -> checkpoint + build.json) and
``provenance.py`` (the checkpoint's own metadata stamp). ``build_stage(recipe, layout, options)`` is the
stage as the pipeline runs it; ``build(recipe, workdir, recipe_dir, ...)`` the same by keywords. The base
loader every stage shares is ``zoo.loader``; versions and the machine are ``zoo.machine``. Methods live in ``zoo.methods``; this
package calls the recipe's method through the registry and never names one. Named ``quantize``, not
``build``, because a folder called ``build`` reads as an output directory to people and tools.
"""

from zoo.quantize.run import BuildResult, build, build_stage

__all__ = ["BuildResult", "build", "build_stage"]
