"""``python -m zoo`` runs the same CLI as the ``zoo`` console script."""

from zoo.cli import main

if __name__ == "__main__":  # not when a spawned child process imports the parent's main module
    main()
