"""The build stage: ``run.py`` (recipe -> checkpoint + build.json), ``load.py`` (base models),
``manifest.py`` (versions and peak memory). Methods live in ``zoo.methods``; this package calls the
recipe's method through the registry and never names one.
"""

from zoo.build.run import BuildResult, build

__all__ = ["BuildResult", "build"]
