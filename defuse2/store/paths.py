"""Path and name rules of the store: lengths, forbidden bytes, splitting.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**paths**. Linux limits a name to 255 bytes (``NAME_MAX``), and the *argument* of a
system call to 4096 bytes including its NUL (``PATH_MAX``). The second limit is the
kernel's to apply, to what the caller wrote: a 4095-byte path relative to a directory
deep in the mount is legal, and reaches the store as a longer path measured from the
mount root. So the store limits names, symlink targets (their own ``PATH_MAX``) and
nothing else. Any byte except ``/`` and NUL may appear in a name; bytes that are not
UTF-8 arrive as lone surrogates (``surrogateescape``) and are kept exactly as given.
"""

from __future__ import annotations

import errno
import os

#: Longest name, in bytes (``NAME_MAX``).
NAME_MAX = 255
#: Size of a path buffer including the final NUL (``PATH_MAX``): the limit of a
#: system call's path argument and of a symlink's target, not of the store's paths.
PATH_MAX = 4096


def fail(code: int, filename: str | None = None) -> OSError:
    """An :class:`OSError` for ``code`` with the usual message (raise it)."""
    if filename is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), filename)


def encode(name: str) -> bytes:
    """The bytes a name or path stands for (UTF-8 with ``surrogateescape``).

    :raises OSError: ``EINVAL`` for a surrogate that no byte can stand for.
    """
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise fail(errno.EINVAL, name) from None


def byte_length(name: str) -> int:
    """Length of ``name`` in bytes."""
    return len(name) if name.isascii() else len(encode(name))


def split(path: str) -> list[str]:
    """The components of an absolute path (empty ones dropped).

    Any length is accepted (see the module docstring); each name is checked where it
    is used.

    :raises OSError: ``EINVAL`` for a NUL byte or a relative path.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    if "\0" in path or not path.startswith("/"):
        raise fail(errno.EINVAL, path)
    return [part for part in path.split("/") if part]


def check_name(name: str) -> None:
    """Refuse a name longer than :data:`NAME_MAX` bytes with ``ENAMETOOLONG``."""
    if len(name) > NAME_MAX // 4 and byte_length(name) > NAME_MAX:
        raise fail(errno.ENAMETOOLONG, name)
