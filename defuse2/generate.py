"""What is generated from the operation table: the reference page and the typing stubs.

Where this sits: beside :mod:`defuse2.operations`, read only by the people who change it.
Both outputs are committed files, so that readers (and type checkers) see them without
running anything; ``tests/test_operations.py`` fails when one is out of date, and::

    python -m defuse2.generate

writes both again: ``docs/operations.rst`` and ``defuse2/declared.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from .operations import OPERATIONS, RESULTS

ROOT = Path(__file__).resolve().parent.parent
#: Where each output lives, relative to the checkout.
OUTPUTS = {"docs/operations.rst": "reference_page", "defuse2/declared.py": "declared_module"}


def reference_page() -> str:
    """The operations reference page of the docs (``docs/operations.rst``), in reST."""
    lines = [
        ".. Generated from defuse2/operations.py: do not edit by hand. Regenerate with",
        "   python -m defuse2.generate",
        "",
        "Operations reference",
        "====================",
        "",
        "Every FUSE operation a :class:`~defuse2.Resource` may define, in the order of",
        "libfuse's ``struct fuse_operations``. A method is named like the operation and",
        "asks for what it needs by name: the operation's arguments below (fusepy's",
        "names), the route's variables, ``path`` (the path asked about) and ``ctx``",
        "(who asks: uid, gid, pid, umask). It gets exactly those; a name the route",
        "cannot give is a :class:`~defuse2.DefuseError` when the route is registered.",
        "A return value other than those listed is answered with ``EIO`` and logged",
        "with the operation, the path and the route.",
        "",
    ]
    for op in OPERATIONS.values():
        arguments = ", ".join(f"``{name}: {kind}``" for name, kind in op.arguments) or "none"
        rows = [
            ("Arguments", arguments),
            ("Returns", op.returns),
            ("When missing", op.when_missing),
            ("Called for", op.syscalls),
        ]
        if op.routed_by != "path":
            rows.append(("Route", f"chosen by ``{op.routed_by}``."))
        title = f"``{op.name}``"
        lines += [title, "-" * len(title), "", f"{op.summary} :manpage:`{op.manpage}`.", ""]
        lines += [f":{label}: {text}" for label, text in rows]
        lines.append("")
    return "\n".join(lines)


def declared_module() -> str:
    """The source of :mod:`defuse2.declared`: every operation a resource may define, as a
    method stub type checkers and IDEs see (and Python never runs)."""
    lines = [
        '"""The operations a resource may define, declared for type checkers and IDEs.',
        "",
        "Generated from defuse2/operations.py by ``python -m defuse2.generate``: do not edit.",
        "",
        "Where this sits: :class:`~defuse2.Resource` derives from :class:`DeclaredOperations`.",
        "At run time the class is empty -- a resource defines only the operations it serves,",
        "and defuse2 registers only those -- but type checkers see one stub per operation, with",
        "what it may return. Each takes ``*args, **kwargs``: a method names only the arguments",
        "it wants (see the operations reference), and any such override type-checks.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Iterable, Mapping",
        "from typing import TYPE_CHECKING, Any",
        "",
        "if TYPE_CHECKING:",
        "    from .attributes import Attributes",
        "",
        "",
        "class DeclaredOperations:",
        '    """The FUSE operations, as a resource may define them."""',
        "",
        "    if TYPE_CHECKING:",
        "",
    ]
    for op in OPERATIONS.values():
        names = ", ".join(f"``{name}``" for name in (*op.argument_names, "path", "ctx"))
        summary = f":manpage:`{op.manpage}`: {op.summary[0].lower()}{op.summary[1:]}"
        lines.append(
            f"        def {op.name}(self, *args: Any, **kwargs: Any) -> {RESULTS[op.result]}:"
        )
        lines += textwrap.wrap(
            f'"""{summary}', width=100, initial_indent=" " * 12, subsequent_indent=" " * 12
        )
        lines.append("")
        lines += textwrap.wrap(
            f"May ask for {names} and the route's variables. Returns: {op.returns}",
            width=100,
            initial_indent=" " * 12,
            subsequent_indent=" " * 12,
        )
        lines += [" " * 12 + '"""', ""]
    return "\n".join(lines[:-1]) + "\n"


def main() -> None:
    """Write every output again."""
    for relative, function in OUTPUTS.items():
        (ROOT / relative).write_text(globals()[function]())
        print(f"wrote {relative}")


if __name__ == "__main__":
    main()
