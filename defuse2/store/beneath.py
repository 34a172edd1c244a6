"""Paths resolved beneath one host directory, so that nothing reaches outside it.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> DirectoryStore ->
**beneath** -> the host kernel. Every path the store is given is resolved here, relative
to a descriptor of the store's root that is opened once, never by joining strings:

- the last component is never followed: an operation on a symlink acts on the symlink
  (as :manpage:`lstat(2)`, :manpage:`unlink(2)`, :manpage:`open(2)` with ``O_NOFOLLOW``
  do). Under a mount the kernel follows links itself before it asks the filesystem, so
  only in-process calls ever name a path through one;
- the directories above it are resolved as if the root were ``/``: an absolute symlink
  target starts again at the root, and ``..`` at the root stays there. This is
  :manpage:`openat2(2)`'s ``RESOLVE_IN_ROOT``, the same rule a chroot applies, and the
  one :class:`~defuse2.store.memory.MemoryStore` follows in its own tree. It holds even
  when another process renames directories or plants symlinks during the walk: the
  kernel checks it, atomically, and so no path, symlink or ``..`` ever leads out.

Linux >= 5.6 has :manpage:`openat2(2)`: one system call resolves the directory. Where it
is missing (an older kernel, a seccomp filter that refuses it) the same rule is walked
here, one component at a time, each opened ``O_PATH | O_NOFOLLOW`` relative to the
descriptor of the one before, with symlinks read and spliced in by hand and ``..``
taken from the walk's own stack (never from the host's ``..``, which could lead out of a
directory moved away during the walk).
"""

from __future__ import annotations

import errno
import os
from collections import deque

from .paths import fail
from .syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, Openat2, openat2_available

#: Symlinks followed in one resolution before ``ELOOP``, as Linux's ``MAXSYMLINKS``.
MAX_SYMLINKS = 40

_DIRECTORY = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS


class Beneath:
    """Resolve store paths (``"/a/b"``) relative to the directory ``root`` only.

    :param root: the host directory; it must exist.
    :param use_openat2: force (``True``) or refuse (``False``) :manpage:`openat2(2)`;
        default: use it where the kernel has it.
    :raises OSError: ``root`` cannot be opened as a directory.
    """

    def __init__(self, root: str, *, use_openat2: bool | None = None) -> None:
        self.fd = os.open(root, _DIRECTORY)
        self.uses_openat2 = openat2_available() if use_openat2 is None else use_openat2
        self._directory = Openat2(os.O_PATH | os.O_DIRECTORY, _IN_ROOT)
        self._openers: dict[int, Openat2] = {}

    def close(self) -> None:
        """Close the root descriptor; the object is unusable afterwards."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def locate(self, path: str) -> tuple[int, str]:
        """``(directory descriptor, name)`` for ``path``: act on ``name`` relative to it.

        The root itself, and a path ending in ``.`` or ``..``, come back as the directory
        and ``"."``. Give the descriptor back with :meth:`release` when done.

        :raises OSError: ``ENOENT``, ``ENOTDIR``, ``ELOOP``, ... from resolving the
            directories above the name.
        """
        head, _, name = path.rpartition("/")
        if not head:
            if name in ("", ".", ".."):
                return self.fd, "."
            if path[:1] == "/":
                return self.fd, name
        if name in ("", ".", ".."):
            return self.directory(path), "."
        return self.directory(head), name

    def release(self, fd: int) -> None:
        """Close a descriptor :meth:`locate` or :meth:`directory` gave (not the root)."""
        if fd != self.fd:
            os.close(fd)

    def directory(self, path: str) -> int:
        """An ``O_PATH`` descriptor of the directory ``path``, the last component included."""
        if not path.startswith("/"):
            raise fail(errno.EINVAL, path)
        if self.uses_openat2:
            return self._directory(self.fd, os.fsencode(path))
        return self._walk(path)

    def open(self, path: str, flags: int) -> int:
        """:manpage:`open(2)` of ``path`` with ``flags`` (``O_NOFOLLOW`` added), no create."""
        if self.uses_openat2 and path.startswith("/"):
            opener = self._openers.get(flags)
            if opener is None:
                opener = self._openers.setdefault(flags, Openat2(flags | os.O_NOFOLLOW, _IN_ROOT))
            return opener(self.fd, os.fsencode(path))
        parent, name = self.locate(path)
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        finally:
            self.release(parent)

    # -- without openat2 ------------------------------------------------------------------
    def _walk(self, path: str) -> int:
        """:meth:`directory` one component at a time (``RESOLVE_IN_ROOT`` by hand)."""
        pending = deque(path.split("/"))
        stack: list[int] = []  # descriptors of the directories above the current one
        current, links = self.fd, 0
        try:
            while pending:
                part = pending.popleft()
                if part in ("", "."):
                    continue
                if part == "..":
                    if stack:
                        os.close(current)
                        current = stack.pop()
                    continue
                target = self._step(current, part)
                if isinstance(target, int):
                    stack.append(current)
                    current = target
                    continue
                links += 1
                if links > MAX_SYMLINKS:
                    raise fail(errno.ELOOP, path)
                if target.startswith("/"):  # absolute: again from the root
                    for fd in [current, *stack]:
                        self.release(fd)
                    current, stack = self.fd, []
                pending.extendleft(reversed(target.split("/")))
            if current == self.fd:
                return os.dup(self.fd)  # the caller releases what it gets
            result, current = current, self.fd
            return result
        finally:
            for fd in [current, *stack]:
                self.release(fd)

    @staticmethod
    def _step(directory: int, name: str) -> int | str:
        """The directory ``name`` in ``directory`` (a descriptor), or the symlink's target."""
        try:
            return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
        except NotADirectoryError:
            try:
                return os.readlink(name, dir_fd=directory)
            except OSError:
                raise fail(errno.ENOTDIR, name) from None
