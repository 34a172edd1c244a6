"""``python -m defuse2``: the ``defuse2`` command (see :mod:`defuse2.cli`)."""

from .cli import main

if __name__ == "__main__":
    main()
