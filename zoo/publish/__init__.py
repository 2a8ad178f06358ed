"""Publishing: ``push.py`` (zoo push), ``pull.py`` (zoo pull + verification), ``release.py``
(build -> eval -> card -> push for many recipes) and ``matrix.py`` (the CI release matrix)."""
