"""A filesystem whose resource and store raise on request, for the errno boundary's tests.

``stat("/routed/KIND")`` makes a resource raise :data:`RAISED` ``[KIND]``;
``stat("/stored-KIND")`` makes the store raise the same. ``/bad/KIND`` answers the bad
value :data:`BAD` ``[KIND]`` names. Mounted by the CLI as ``raising_app:fs``;
:func:`make_filesystem` builds a fresh one for the test client.
"""

from __future__ import annotations

import errno

from defuse2 import FileSystem, MemoryStore, Resource

#: What each kind raises, and the errno every caller must see for it.
RAISED: dict[str, tuple[type[BaseException], tuple[object, ...], int]] = {
    "enoent": (FileNotFoundError, (errno.ENOENT, "gone"), errno.ENOENT),
    "enoent-bare": (FileNotFoundError, ("gone",), errno.ENOENT),
    "eacces-bare": (PermissionError, ("no",), errno.EACCES),
    "eexist-bare": (FileExistsError, ("there",), errno.EEXIST),
    "timeout-bare": (TimeoutError, (), errno.ETIMEDOUT),
    "erange": (OSError, (errno.ERANGE, "out of range"), errno.ERANGE),
    "oserror-bare": (OSError, ("no errno",), errno.EIO),
    "valueerror": (ValueError, ("a bug",), errno.EIO),
    "systemexit": (SystemExit, (3,), errno.EIO),
    "generatorexit": (GeneratorExit, (), errno.EIO),
    "keyboardinterrupt": (KeyboardInterrupt, (), errno.EIO),
}


#: Bad answers from a resource: the getattr of ``/bad/KIND``, or its ``write``/``open``,
#: and what the log line says about it.
BAD: dict[str, tuple[dict[str, object], str]] = {
    "huge-size": ({"st_size": 2**70}, f"st_size={2**70}: out of range"),
    "negative-size": ({"st_size": -5}, "st_size=-5: a size is never negative"),
    "text-size": ({"st_size": "12"}, "st_size='12': an int, not str"),
    "no-file-type": ({"st_mode": 0o644}, "st_mode=0o644, which has no file type"),
    "write-minus-one": ({}, "write() must return None or the number of bytes written"),
    "open-text": ({}, "a file handle is None or an int from 0 to 2**64-1, not 'fh'"),
}


def raise_kind(kind: str) -> None:
    cls, args, _expected = RAISED[kind]
    raise cls(*args)


class RaisingStore(MemoryStore):
    """A custom store: ``/stored-KIND`` raises, everything else is stored as usual."""

    def getattr(self, path: str | None, fh: int | None = None):  # type: ignore[no-untyped-def]
        if path is not None and path.startswith("/stored-"):
            raise_kind(path.removeprefix("/stored-"))
        return super().getattr(path, fh)


def make_filesystem() -> FileSystem:
    fs = FileSystem(store=RaisingStore())

    @fs.route("/routed/<kind>")
    class Raising(Resource):
        def getattr(self, kind: str) -> None:
            raise_kind(kind)

    @fs.route("/bad/<kind>")
    class Bad(Resource):
        def getattr(self, kind: str) -> dict[str, object]:
            return {"st_mode": 0o100666, "st_size": 0, **BAD[kind][0]}

        def open(self, kind: str) -> object:
            return "fh" if kind == "open-text" else 0

        def write(self, kind: str) -> int:
            return -1

    return fs


fs = make_filesystem()
