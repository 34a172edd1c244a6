"""Write ``python.inv``: the part of Python's object inventory that these docs link to.

Sphinx's intersphinx links a name such as ``pathlib.Path`` to Python's documentation
through that documentation's ``objects.inv``, which it would download on every build.
These docs build offline (CI reaches no documentation site), so the entries they use are
kept here: ``python-names.txt`` lists them, one ``domain:role name`` a line, and this
script copies those entries, with their exact addresses, from a full inventory of
Python 3.11's documentation into ``python.inv``. Debian's ``python3.11-doc`` package has
one; any downloaded ``https://docs.python.org/3.11/objects.inv`` does as well.

When ``sphinx-build -n`` reports "py:class reference target not found: some.Name", add
the name to ``python-names.txt`` and run::

    python docs/inventories/python.py [/usr/share/doc/python3.11/html/objects.inv]

The test suite checks that ``python.inv`` holds exactly the listed names and, where a full
inventory is installed, that every address matches it.
"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = HERE / "python-names.txt"
OUTPUT = HERE / "python.inv"
FULL = Path("/usr/share/doc/python3.11/html/objects.inv")
HEADER = "# Sphinx inventory version 2\n# Project: Python\n# Version: 3.11\n"

#: One entry of an inventory: ``name domain:role priority uri display-name``.
ENTRY = re.compile(r"(?x)(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)")


def read(path: Path) -> dict[tuple[str, str], str]:
    """The entries of an ``objects.inv`` (version 2): ``(role, name) -> line``."""
    data = path.read_bytes()
    lines = data.split(b"\n", 4)
    if not lines[0].startswith(b"# Sphinx inventory version 2"):
        raise SystemExit(f"{path}: not a version 2 Sphinx inventory")
    body = zlib.decompress(lines[4]).decode("utf-8")
    entries = {}
    for line in body.splitlines():
        match = ENTRY.fullmatch(line)
        if match:
            entries[match.group(2), match.group(1)] = line
    return entries


def wanted() -> list[tuple[str, str]]:
    """``python-names.txt``: ``(role, name)`` pairs, comments and blank lines skipped."""
    pairs = []
    for line in NAMES.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            role, name = line.split()
            pairs.append((role, name))
    return pairs


def write(full: Path) -> None:
    entries = read(full)
    missing = [f"{role} {name}" for role, name in wanted() if (role, name) not in entries]
    if missing:
        raise SystemExit(f"not in {full}: {', '.join(missing)}")
    body = "".join(entries[pair] + "\n" for pair in sorted(wanted()))
    header = HEADER + "# The remainder of this file is compressed using zlib.\n"
    OUTPUT.write_bytes(header.encode() + zlib.compress(body.encode("utf-8"), 9))
    print(f"{OUTPUT}: {len(wanted())} entries from {full}")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else FULL)
