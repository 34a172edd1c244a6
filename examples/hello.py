"""Hello, FUSE: four generated read-only files, the classic first filesystem.

Teaches the two callbacks every filesystem needs: ``getattr`` (what is this path?) and
``read`` (what bytes are in it?), plus ``readdir`` for the listing. The files
``/test0.txt`` to ``/test3.txt`` each hold their name four times, so
``/test2.txt`` holds ``test2test2test2test2`` (20 bytes). Every path no route claims
(``mkdir /notes``) is kept in memory, up to 64 MiB.

Run it::

    python examples/hello.py /tmp/m --foreground
"""

from defuse2 import FileSystem, Resource, attributes

fs = FileSystem(quota="64 MiB")


@fs.route("/")
class Root(Resource):
    def readdir(self):
        return [f"test{i}.txt" for i in range(4)]


@fs.route("/<name>.<ext>")
class Files(Resource):
    def getattr(self, name, ext):
        return attributes.file(size=len(name) * 4, mode=0o444)

    def read(self, size, offset, name, ext):
        return (name * 4).encode()[offset : offset + size]


if __name__ == "__main__":
    fs.main()
