"""The Linux system calls :mod:`os` lacks, through :mod:`ctypes`.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> DirectoryStore ->
**syscalls** -> the host kernel. Python 3.11's :mod:`os` has no :manpage:`openat2(2)`, no
:manpage:`renameat2(2)` flags, no ``UTIME_NOW``/``UTIME_OMIT`` in ``os.utime`` and no
``mode`` for :manpage:`fallocate(2)`; these wrappers call libc directly and raise
:class:`OSError` with the errno the kernel gave, like :mod:`os` does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)

#: ``resolve`` flags of :manpage:`openat2(2)`.
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

AT_SYMLINK_NOFOLLOW = 0x100

#: :manpage:`openat2(2)` has the same number on every architecture that has it.
_SYS_OPENAT2 = 437
#: Architectures whose system call table has :manpage:`openat2(2)` at 437 (all of Linux's
#: unified table; the old ones with tables of their own are left out).
_UNIFIED_TABLE = {"x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x", "loongarch64"}


class OpenHow(ctypes.Structure):
    """``struct open_how`` of :manpage:`openat2(2)`."""

    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]

_renameat2 = _libc.renameat2
_renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_utimensat = _libc.utimensat
_utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
_fallocate = _libc.fallocate64
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def _error(name: str | bytes | None = None, other: str | bytes | None = None) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), name, None, other)


class Openat2:
    """:manpage:`openat2(2)` with fixed ``flags`` and ``resolve``: ``call(dirfd, path)``.

    Built once per combination (the ``struct open_how`` is reused, read-only), so a call
    costs one :mod:`ctypes` call. :attr:`available` tells whether this kernel has it.
    """

    def __init__(self, flags: int, resolve: int) -> None:
        self._how = OpenHow(flags | os.O_CLOEXEC, 0, resolve)
        self._address = ctypes.addressof(self._how)
        self._size = ctypes.sizeof(self._how)

    def __call__(self, dirfd: int, path: bytes) -> int:
        """The new descriptor; raises :class:`OSError` (``EAGAIN`` is retried)."""
        for _ in range(16):
            fd: int = _syscall(_SYS_OPENAT2, dirfd, path, self._address, self._size)
            if fd >= 0:
                return fd
            if ctypes.get_errno() != errno.EAGAIN:
                break  # EAGAIN: a rename or mount raced with the walk; try again
        raise _error(os.fsdecode(path))


def openat2_available() -> bool:
    """Whether :manpage:`openat2(2)` works here (Linux >= 5.6, not filtered out)."""
    if platform.machine().lower() not in _UNIFIED_TABLE:
        return False
    probe = Openat2(os.O_PATH | os.O_DIRECTORY, RESOLVE_IN_ROOT)
    try:
        os.close(probe(-100, b"/"))  # AT_FDCWD
    except OSError:
        return False  # ENOSYS (old kernel), EPERM (a seccomp filter), ...
    return True


def renameat2(olddir: int, old: str, newdir: int, new: str, flags: int) -> None:
    """:manpage:`renameat2(2)`: ``RENAME_NOREPLACE``, ``RENAME_EXCHANGE``, ..."""
    if _renameat2(olddir, os.fsencode(old), newdir, os.fsencode(new), flags) != 0:
        raise _error(old, new)


def _timespecs(times: tuple[int, int] | None) -> ctypes.Array[_Timespec] | None:
    if times is None:
        return None  # both now
    from .base import UTIME_NOW, UTIME_OMIT

    specs = [(0, t) if t in (UTIME_NOW, UTIME_OMIT) else divmod(t, 10**9) for t in times]
    return (_Timespec * 2)(*(_Timespec(*spec) for spec in specs))


def utimensat(dirfd: int, name: str, times: tuple[int, int] | None) -> None:
    """:manpage:`utimensat(2)` of ``name`` itself (never a symlink's target); ``times``
    in ns, with ``UTIME_NOW``/``UTIME_OMIT`` as given; ``None`` is now for both."""
    if _utimensat(dirfd, os.fsencode(name), _timespecs(times), AT_SYMLINK_NOFOLLOW) != 0:
        raise _error(name)


def futimens(fd: int, times: tuple[int, int] | None) -> None:
    """:manpage:`futimens(3)`: :func:`utimensat` on an open descriptor."""
    if _utimensat(fd, None, _timespecs(times), 0) != 0:
        raise _error()


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """:manpage:`fallocate(2)` with its ``mode`` (``FALLOC_FL_KEEP_SIZE``, ...)."""
    if _fallocate(fd, mode, offset, length) != 0:
        raise _error()
