"""A filesystem of one routed file, ``/motd``, that reads ``hello``: for tests that need any
routed filesystem."""

from __future__ import annotations

from defuse2 import FileSystem, Resource, attributes


def small_filesystem() -> FileSystem:
    """A new filesystem routing ``/motd``."""
    fs = FileSystem(quota="1 MiB")

    @fs.route("/motd")
    class Motd(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=6)

        def read(self, size: int, offset: int) -> bytes:
            return b"hello\n"[offset : offset + size]

    return fs
