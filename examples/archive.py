"""An archive mounted read-only: browse a .zip or .tar without unpacking it.

Teaches a filesystem built from an index: the archive's member list is read once
into a dict of paths, one ``Resource`` routed at ``/`` and ``/<path:member>`` answers
``getattr``, ``readdir`` and ``read`` from it, and since that route claims every path,
anything that would change the tree fails with ``EROFS``.

Set ``DEFUSE2_ARCHIVE`` to a ``.zip``, ``.tar``, ``.tar.gz`` ...; without it a small
demo zip is built in memory. Run it::

    DEFUSE2_ARCHIVE=backup.tar.gz python examples/archive.py /tmp/m --foreground
"""

import functools
import io
import os
import posixpath
import tarfile
import threading
import zipfile

from defuse2 import FileSystem, Resource, attributes


def demo_zip():
    """A small zip archive, built in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "A demo archive.\n")
        archive.writestr("docs/guide.txt", "Members become files; folders become directories.\n")
        archive.writestr("docs/empty/", "")
    return zipfile.ZipFile(buffer)


def open_archive(path):
    """Open ``path`` as a zip or tar archive; ``None`` builds the demo zip."""
    if path is None:
        return demo_zip()
    if zipfile.is_zipfile(path):
        return zipfile.ZipFile(path)
    return tarfile.open(path)


archive = open_archive(os.environ.get("DEFUSE2_ARCHIVE"))
lock = threading.Lock()
files = {}  # "/docs/guide.txt" -> (size, member)
directories = {"/": set()}  # "/docs" -> {"guide.txt", "empty"}


def add(path, size=None, member=None):
    """Index one member and every parent directory it implies."""
    if size is None:
        directories.setdefault(path, set())
    else:
        files[path] = (size, member)
    while path != "/":
        parent, name = posixpath.split(path)
        directories.setdefault(parent, set()).add(name)
        path = parent


if isinstance(archive, zipfile.ZipFile):
    for info in archive.infolist():
        path = "/" + info.filename.strip("/")
        add(path, None if info.is_dir() else info.file_size, info)
else:
    for info in archive.getmembers():
        path = posixpath.normpath("/" + info.name)
        if info.isdir() or info.isfile():
            add(path, None if info.isdir() else info.size, info)


@functools.lru_cache(maxsize=8)
def member_bytes(path):
    """The bytes of one member, decompressed once and kept for the next reads."""
    member = files[path][1]
    with lock:  # with -o threads, calls arrive on many threads; one file position
        if isinstance(archive, zipfile.ZipFile):
            return archive.read(member)
        return archive.extractfile(member).read()


fs = FileSystem()


@fs.route("/")
@fs.route("/<path:member>")
class Member(Resource):
    def getattr(self, path):
        if path in directories:
            return attributes.directory(mode=0o555)
        if path in files:
            return attributes.file(size=files[path][0], mode=0o444)
        raise FileNotFoundError(path)

    def readdir(self, path):
        if path not in directories:
            raise NotADirectoryError(path)
        return sorted(directories[path])

    def read(self, path, size, offset):
        return member_bytes(path)[offset : offset + size]


if __name__ == "__main__":
    fs.main()
