"""Writable files: the code of the "Writable files" how-to."""

from __future__ import annotations

import errno
import posixpath

from defuse2 import Attributes, FileSystem, Resource, WritableFile, attributes

fs = FileSystem()

# -- a document: content() reads it, save() keeps it -----------------------------------------

NOTES: dict[str, str] = {"todo": "write the docs\n"}


@fs.directory("/notes")
def notes() -> list[str]:
    return sorted(NOTES)


@fs.route("/notes/<name>")
class Note(WritableFile):
    """Every name in /notes is a note: UTF-8 text, kept in a dict."""

    def content(self, name: str) -> str:
        try:
            return NOTES[name]
        except KeyError:
            raise FileNotFoundError(name) from None

    def save(self, data: bytes, name: str) -> None:
        try:
            NOTES[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise OSError(errno.EINVAL, "notes are UTF-8 text") from None

    def delete(self, name: str) -> None:
        del NOTES[name]


# -- a resource that writes in place, operation by operation --------------------------------

BLOBS: dict[str, bytearray] = {}


@fs.directory("/blobs")
def blobs() -> list[str]:
    return sorted(BLOBS)


@fs.route("/blobs/<name>")
class Blob(Resource):
    """Bytes kept in a dict, changed where they are written."""

    def getattr(self, name: str) -> Attributes:
        if name not in BLOBS:
            raise FileNotFoundError(name)
        return attributes.file(size=len(BLOBS[name]), mode=0o644)

    def read(self, size: int, offset: int, name: str) -> bytes:
        return bytes(BLOBS[name][offset : offset + size])

    def write(self, data: bytes, offset: int, name: str) -> None:
        blob = BLOBS[name]
        if offset > len(blob):
            blob.extend(bytes(offset - len(blob)))  # a gap reads as zeros
        blob[offset : offset + len(data)] = data

    def truncate(self, length: int, name: str) -> None:
        blob = BLOBS[name]
        del blob[length:]
        blob.extend(bytes(length - len(blob)))

    def create(self, name: str) -> None:
        BLOBS[name] = bytearray()

    def unlink(self, name: str) -> None:
        del BLOBS[name]

    def rename(self, new: str, name: str) -> None:
        if posixpath.dirname(new) != "/blobs":
            raise OSError(errno.EXDEV, "blobs stay in /blobs")
        BLOBS[posixpath.basename(new)] = BLOBS.pop(name)
