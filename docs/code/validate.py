"""Validating writes with StoreResource: the code of the "Validate writes" how-to."""

from __future__ import annotations

import errno
import logging

from defuse2 import Context, FileSystem, StoreResource

log = logging.getLogger("audit")
fs = FileSystem(quota="16 MiB")

MAX_NOTE = 4096


@fs.route("/notes/<name>.txt")
class Note(StoreResource):
    """Notes are stored as usual, but must be text and at most 4 KiB."""

    def write(
        self, path: str, data: bytes, offset: int, fh: int, ctx: Context | None = None
    ) -> int:
        if b"\0" in data:
            raise OSError(errno.EINVAL, "notes are text", path)
        if offset + len(data) > MAX_NOTE:
            raise OSError(errno.EFBIG, "notes are at most 4 KiB", path)
        return super().write(path, data, offset, fh, ctx)

    def truncate(
        self, path: str, length: int, fh: int | None = None, ctx: Context | None = None
    ) -> None:
        if length > MAX_NOTE:
            raise OSError(errno.EFBIG, "notes are at most 4 KiB", path)
        super().truncate(path, length, fh, ctx)

    def unlink(self, path: str, ctx: Context | None = None) -> None:
        log.info("uid %s deleted %s", ctx.uid if ctx else "?", path)
        super().unlink(path, ctx)
