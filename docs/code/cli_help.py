"""Write the ``--help`` of each ``defuse2`` command into ``docs/_generated/cli/``.

``docs/conf.py`` runs this before every build, and the CLI reference page includes the
files: the page always shows what the commands print.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from defuse2.cli import main

OUTPUT = Path(__file__).resolve().parent.parent / "_generated" / "cli"
WIDTH = "88"

#: The file of each command's help, and the arguments that print it.
COMMANDS = {
    "defuse2": ["--help"],
    "mount": ["mount", "--help"],
    "umount": ["umount", "--help"],
    "routes": ["routes", "--help"],
    "match": ["match", "--help"],
    "examples": ["examples", "--help"],
    "examples-run": ["examples", "run", "--help"],
}


def help_text(argv: list[str]) -> str:
    """What ``defuse2 ARGV`` prints, at a fixed width."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return output.getvalue()


def write() -> None:
    """Write ``COMMAND.txt`` for each command (only those whose text changed)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, argv in COMMANDS.items():
        path = OUTPUT / f"{name}.txt"
        text = help_text(argv)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)


if __name__ == "__main__":
    write()
