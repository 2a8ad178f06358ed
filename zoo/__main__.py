"""``python -m zoo`` runs the same CLI as the ``zoo`` console script."""

from zoo.cli import main

main()
