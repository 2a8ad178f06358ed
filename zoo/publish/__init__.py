"""Publishing: ``push.py`` (zoo push: what a release is) with ``commit.py`` (comparing, committing
and tagging on the Hub), ``pull.py`` (zoo pull) with ``target.py`` (the folder it may write),
``manifest.py`` (zoo-release.json, what pull verifies against), ``fetch.py`` (each download, stopped
at the manifest's size) and ``fresh.py`` (the verified releases that make a rollback visible),
``hub.py`` (names, timeouts, retries and errors shared by every Hub call), ``release.py`` (build ->
eval -> card -> push for many recipes) and ``matrix.py`` (the CI release matrix)."""
