"""The filesystem of the cache tests: the store, routed files and a routed directory.

``/routed.txt`` and ``/dynamic.txt`` show :data:`CONTENT`, and ``/names`` lists its
words, which a test changes through ``/control`` (a write there replaces it), the way a
resource's content changes behind the kernel's back.
"""

from defuse2 import FileSystem, Resource, attributes

fs = FileSystem(quota=64 * 1024 * 1024)

#: What the routed files read; the first line written to ``/control`` replaces it.
CONTENT = [b"first\n"]


@fs.route("/routed.txt")
class Routed(Resource):
    def getattr(self) -> attributes.Attributes:
        return attributes.file(size=len(CONTENT[0]), mode=0o444)

    def read(self, size: int, offset: int) -> bytes:
        return CONTENT[0][offset : offset + size]


@fs.route("/dynamic.txt")
class Dynamic(Routed):
    dynamic = True


@fs.route("/control")
class Control(Resource):
    def getattr(self) -> attributes.Attributes:
        return attributes.file(size=0, mode=0o666)

    def write(self, data: bytes) -> None:
        CONTENT[0] = bytes(data)

    def truncate(self) -> None:
        pass


@fs.route("/names")
class Names(Resource):
    def readdir(self) -> list[str]:
        return CONTENT[0].decode().split()
