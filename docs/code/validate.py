"""Validating writes with StoreResource: the code of the "Validate writes" how-to."""

import errno
import logging

from defuse2 import FileSystem, StoreResource

log = logging.getLogger("audit")
fs = FileSystem(quota="16 MiB")

MAX_NOTE = 4096


@fs.route("/notes/<name>.txt")
class Note(StoreResource):
    """Notes are stored as usual, but must be text and at most 4 KiB."""

    def write(self, path, data, offset, fh, ctx):
        if b"\0" in data:
            raise OSError(errno.EINVAL, "notes are text", path)
        if offset + len(data) > MAX_NOTE:
            raise OSError(errno.EFBIG, "notes are at most 4 KiB", path)
        return super().write(path, data, offset, fh, ctx)

    def truncate(self, path, length, fh, ctx):
        if length > MAX_NOTE:
            raise OSError(errno.EFBIG, "notes are at most 4 KiB", path)
        super().truncate(path, length, fh, ctx)

    def unlink(self, path, ctx):
        log.info("uid %d deleted %s", ctx.uid, path)
        super().unlink(path, ctx)
