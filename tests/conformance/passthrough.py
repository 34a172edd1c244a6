"""A store that passes every operation to a real directory: a check on the test client.

Behind a ``FileSystem``, driven by the :class:`~defuse2.testing.TestClient`, it lets the
conformance suite test the client's own part (path walking, descriptors, the checks the
kernel does) against answers that come from Linux itself, independently of MemoryStore.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from defuse2.store.base import UTIME_NOW, UTIME_OMIT

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(result: int) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _stat(st: os.stat_result) -> dict[str, int]:
    keys = ["mode", "ino", "dev", "nlink", "uid", "gid", "size", "blksize", "blocks", "rdev"]
    result = {f"st_{key}": getattr(st, f"st_{key}") for key in keys}
    for key in ("atime", "mtime", "ctime"):
        result[f"st_{key}"] = getattr(st, f"st_{key}_ns")
    return result


class PassthroughStore:
    """Every store operation done with :mod:`os` on the same path under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _p(self, path: str | None) -> str:
        assert path is not None
        return self.root + path if path != "/" else self.root

    def _target(self, path: str | None, fh: int | None) -> Any:
        return fh if fh is not None and fh > 0 else self._p(path)

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        if fh is not None and fh > 0:
            return _stat(os.fstat(fh))
        return _stat(os.lstat(self._p(path)))

    def readdir(self, path: str, fh: int | None = None) -> list[str]:
        return os.listdir(self._p(path))

    def readlink(self, path: str) -> str:
        return os.readlink(self._p(path))

    def access(self, path: str, amode: int, *, ctx: Any = None) -> None:
        if not os.access(self._p(path), amode):
            raise PermissionError(13, "access")

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._p(path))
        keys = [
            "bsize",
            "frsize",
            "blocks",
            "bfree",
            "bavail",
            "files",
            "ffree",
            "favail",
            "flag",
            "namemax",
        ]
        return {f"f_{key}": getattr(st, f"f_{key}") for key in keys}

    def mknod(self, path: str, mode: int, dev: int, *, ctx: Any = None) -> None:
        os.mknod(self._p(path), mode, dev)
        os.chmod(self._p(path), mode & 0o7777)

    def mkdir(self, path: str, mode: int, *, ctx: Any = None) -> None:
        os.mkdir(self._p(path))
        os.chmod(self._p(path), mode & 0o7777)

    def unlink(self, path: str, *, ctx: Any = None) -> None:
        os.unlink(self._p(path))

    def rmdir(self, path: str, *, ctx: Any = None) -> None:
        os.rmdir(self._p(path))

    def symlink(self, target: str, source: str, *, ctx: Any = None) -> None:
        os.symlink(source, self._p(target))

    def rename(self, old: str, new: str, flags: int = 0, *, ctx: Any = None) -> None:
        old_b, new_b = os.fsencode(self._p(old)), os.fsencode(self._p(new))
        _check(_libc.renameat2(-100, old_b, -100, new_b, ctypes.c_uint(flags)))

    def link(self, target: str, source: str, *, ctx: Any = None) -> None:
        os.link(self._p(source), self._p(target), follow_symlinks=False)

    def chmod(self, path: str | None, mode: int, fh: int | None = None, *, ctx: Any = None) -> None:
        os.chmod(self._target(path, fh), mode)

    def chown(
        self, path: str | None, uid: int, gid: int, fh: int | None = None, *, ctx: Any = None
    ) -> None:
        os.chown(self._target(path, fh), uid, gid)

    def truncate(
        self, path: str | None, length: int, fh: int | None = None, *, ctx: Any = None
    ) -> None:
        os.truncate(self._target(path, fh), length)

    def utimens(
        self, path: str | None, times: Any = None, fh: int | None = None, *, ctx: Any = None
    ) -> None:
        times = times or (UTIME_NOW, UTIME_NOW)
        specs = (_Timespec * 2)(
            *[(0, t) if t in (UTIME_NOW, UTIME_OMIT) else divmod(t, 10**9) for t in times]
        )
        _check(_libc.utimensat(-100, os.fsencode(self._p(path)), specs, 0x100))

    def create(self, path: str, mode: int, flags: int = 0, *, ctx: Any = None) -> int:
        fd = os.open(
            self._p(path), (flags & ~(os.O_APPEND | os.O_ACCMODE)) | os.O_CREAT | os.O_RDWR, 0
        )
        os.fchmod(fd, mode & 0o7777)
        return fd

    def open(self, path: str, flags: int, *, ctx: Any = None) -> int:
        flags = (flags & ~(os.O_APPEND | os.O_ACCMODE)) | os.O_RDWR
        try:
            return os.open(self._p(path), flags)
        except OSError:  # read-only file: the client checks modes no more than a store does
            return os.open(self._p(path), (flags & ~os.O_ACCMODE) | os.O_RDONLY)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int, *, ctx: Any = None) -> int:
        return os.pwrite(fh, data, offset)

    def fallocate(
        self, path: str | None, mode: int, offset: int, size: int, fh: int, **_: Any
    ) -> None:
        os.posix_fallocate(fh, offset, size)

    def flush(self, path: str | None, fh: int) -> None:
        pass

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        os.fsync(fh)

    def release(self, path: str | None, fh: int) -> None:
        os.close(fh)

    def opendir(self, path: str, *, ctx: Any = None) -> int:
        return 0

    def releasedir(self, path: str | None, fh: int) -> None:
        pass

    def getxattr(self, path: str, name: str) -> bytes:
        return os.getxattr(self._p(path), name, follow_symlinks=False)

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, *, ctx: Any = None
    ) -> None:
        os.setxattr(self._p(path), name, value, options, follow_symlinks=False)

    def listxattr(self, path: str) -> list[str]:
        return os.listxattr(self._p(path), follow_symlinks=False)

    def removexattr(self, path: str, name: str, *, ctx: Any = None) -> None:
        os.removexattr(self._p(path), name, follow_symlinks=False)
