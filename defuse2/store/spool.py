"""A local copy of a file being written, in memory while small, on disk beyond a size.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> FsspecStore -> open file
-> **spool**. An object store cannot change part of an object: a file written through
the mount is assembled here and uploaded whole (at ``flush``, ``fsync`` or ``release``).
Up to ``limit`` bytes it is a :class:`bytearray`; past that, it moves once into an
anonymous temporary file in ``directory`` (:func:`tempfile.TemporaryFile`: it has no
name and disappears with its descriptor), written and read with :manpage:`pwrite(2)` and
:manpage:`pread(2)`, so memory stays bounded whatever the file's size.

A spool is not thread-safe: its owner holds a lock around every call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import BinaryIO

from .base import Buffer

#: Bytes held in memory before a spool moves to a temporary file.
DEFAULT_LIMIT = 16 << 20

_CHUNK = 1 << 20


class Spool:
    """File content being assembled: :meth:`pwrite`, :meth:`pread`, :meth:`truncate`.

    :param limit: bytes kept in memory before moving to a temporary file.
    :param directory: where temporary files go (default: the system's, :envvar:`TMPDIR`).
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, directory: str | None = None) -> None:
        self.limit = limit
        self.directory = directory
        self._memory: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self.size = 0

    @property
    def on_disk(self) -> bool:
        """Whether the content has moved to a temporary file."""
        return self._file is not None

    def pwrite(self, data: Buffer, offset: int) -> int:
        """Write all of ``data`` at ``offset`` (a gap before it reads as zeros)."""
        end = offset + len(data)
        if self._memory is not None and end > self.limit:
            self._move_to_disk()
        if self._memory is not None:
            if offset > len(self._memory):
                self._memory.extend(bytes(offset - len(self._memory)))
            self._memory[offset:end] = data
        else:
            assert self._file is not None
            os.pwrite(self._file.fileno(), data, offset)
        self.size = max(self.size, end)
        return len(data)

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset``."""
        if self._memory is not None:
            return bytes(self._memory[offset : offset + size])
        assert self._file is not None
        return os.pread(self._file.fileno(), min(size, max(self.size - offset, 0)), offset)

    def truncate(self, length: int) -> None:
        """Cut or extend (with zeros) to ``length`` bytes."""
        if self._memory is not None and length > self.limit:
            self._move_to_disk()
        if self._memory is not None:
            if length < len(self._memory):
                del self._memory[length:]
            else:
                self._memory.extend(bytes(length - len(self._memory)))
        else:
            assert self._file is not None
            os.ftruncate(self._file.fileno(), length)
        self.size = length

    def fill(self, source: BinaryIO) -> None:
        """Replace the content with everything ``source`` reads (a download)."""
        self.truncate(0)
        while chunk := source.read(_CHUNK):
            self.pwrite(chunk, self.size)

    def content(self) -> bytes | BinaryIO:
        """The whole content: ``bytes`` while in memory, else the temporary file,
        positioned at its start (to upload with one ``read`` loop)."""
        if self._memory is not None:
            return bytes(self._memory)
        assert self._file is not None
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        """Drop the content (the temporary file disappears)."""
        self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _move_to_disk(self) -> None:
        assert self._memory is not None
        self._file = tempfile.TemporaryFile(dir=self.directory)  # noqa: SIM115 (closed in close)
        self._file.write(self._memory)
        self._file.flush()
        self._memory = None


def copy_to(spool: Spool, target: BinaryIO) -> None:
    """Write the spool's whole content to the file object ``target`` (an upload)."""
    content = spool.content()
    if isinstance(content, bytes):
        target.write(content)
    else:
        shutil.copyfileobj(content, target, _CHUNK)
