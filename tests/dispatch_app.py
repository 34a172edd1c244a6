"""The filesystem the dispatcher tests start from: a root listing four ``test{i}.txt``
files, each reading its name four times; tests route more onto it."""

from __future__ import annotations

from defuse2 import FileSystem, Resource, attributes


def four_files() -> FileSystem:
    """A new filesystem routing ``/`` and ``/<name>.<ext>`` (read-only, 0444)."""
    filesystem = FileSystem(quota="1 MiB")

    @filesystem.route("/")
    class Root(Resource):
        def readdir(self):
            return [f"test{i}.txt" for i in range(4)]

    @filesystem.route("/<name>.<ext>")
    class Files(Resource):
        def getattr(self, name, ext):
            return attributes.file(size=len(name) * 4, mode=0o444)

        def read(self, size, offset, name, ext):
            return (name * 4).encode()[offset : offset + size]

    return filesystem
