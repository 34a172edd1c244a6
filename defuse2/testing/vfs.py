"""The kernel's part of a system call, played in-process for the test client.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher. Before a request
reaches a filesystem, the kernel's VFS has walked the path one component at a time
(``.``, ``..``, symlinks, ``ENOTDIR``, ``ELOOP``, ``ENAMETOOLONG``), made the checks that
need no filesystem (most of ``rename``'s), and, for a descriptor, looked up the open file
it names: the filesystem's handle (``fh``), the open flags and the offset. :class:`Vfs`
does all this over a dispatcher; :class:`~defuse2.testing.TestClient` builds the ``os``-like
methods on it. A descriptor follows its file through renames; after an ``unlink`` it
reaches the file by handle alone (its ``path`` becomes None).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..answers import check_stat
from ..errors import errno_for
from ..store.base import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, Context

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..filesystem import FileSystem

#: The kernel's limits: symlinks followed in one lookup, bytes in a path with its NUL.
MAXSYMLINKS = 40
PATH_MAX = 4096
O_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR


def os_error(code: int, path: str | None = None, path2: str | None = None) -> OSError:
    """An ``OSError`` (the right builtin subclass) like the one ``os`` raises."""
    return OSError(code, os.strerror(code), path, None, path2)


def to_stat_result(st: Any) -> os.stat_result:
    """Turn a dispatcher stat mapping (times in ns) into an :class:`os.stat_result`."""
    ns = {key: int(st.get(key, 0)) for key in ("st_atime", "st_mtime", "st_ctime")}
    fields = [int(st.get(key, 0)) for key in ("st_mode", "st_ino", "st_dev", "st_nlink")]
    fields += [int(st.get(key, 0)) for key in ("st_uid", "st_gid", "st_size")]
    fields += [value // 10**9 for value in ns.values()]
    extra: dict[str, float | int] = {key: value / 10**9 for key, value in ns.items()}
    extra.update({f"{key}_ns": value for key, value in ns.items()})
    for key in ("st_blksize", "st_blocks", "st_rdev"):
        extra[key] = int(st.get(key, 0))
    return os.stat_result(fields, extra)


@dataclass
class Descriptor:
    """One open file description: the handle, the flags and the offset the kernel keeps."""

    path: str | None
    fh: int
    flags: int
    is_dir: bool
    offset: int = 0


class Vfs:
    """Path walking and the descriptor table over a dispatcher: the kernel's side.

    :param target: a :class:`~defuse2.FileSystem` (its ``dispatcher(context=...)`` is used)
        or a dispatcher.
    :param context: who makes the requests (uid, gid, pid, umask); default: this process.
    """

    def __init__(self, target: FileSystem | Dispatcher, context: Context | None = None) -> None:
        self.context = context if context is not None else Context.current()
        #: The filesystem driven, when the client was given one (not a dispatcher).
        self.filesystem: FileSystem | None = None
        if hasattr(target, "dispatcher"):
            self.filesystem = target  # type: ignore[assignment]
            target = target.dispatcher(context=lambda: self.context)
        self.dispatcher: Dispatcher = target
        self._fds: dict[int, Descriptor] = {}
        #: The directory relative paths start from (an absolute path), as ``chdir`` set it.
        self._cwd = "/"
        self._lock = threading.Lock()  # guards the descriptor table
        self._append_lock = threading.Lock()

    # -- walking paths --------------------------------------------------------------------
    def _lookup(self, path: str) -> dict[str, int] | None:
        """``getattr`` of an absolute path, or None where nothing is there."""
        try:
            return dict(self._call("getattr", path, path))
        except FileNotFoundError:
            return None

    def _resolve(self, path: str, follow: bool = True) -> tuple[str, dict[str, int] | None]:
        """Walk ``path`` like the kernel: the absolute path it ends at and its stat.

        ``PATH_MAX`` applies to ``path`` as given: a relative path starts from the working
        directory, and the absolute path it ends at may be longer. The stat is None when
        the last component does not exist (its parent does).
        """
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if len(os.fsencode(path)) >= PATH_MAX:
            raise os_error(errno.ENAMETOOLONG, path)
        if path == "":
            raise os_error(errno.ENOENT, path)
        must_be_dir = path.endswith(("/", "/.", "/..")) or path in (".", "..")
        pending = [part for part in path.split("/") if part not in ("", ".")]
        done = [] if path.startswith("/") else [part for part in self._cwd.split("/") if part]
        links = 0
        st: dict[str, int] | None = self._lookup("/" + "/".join(done))
        while pending:
            name = pending.pop(0)
            if name == "..":
                done = done[:-1]
                st = self._lookup("/" + "/".join(done))
                continue
            current = "/" + "/".join([*done, name])
            last = not pending
            st = self._lookup(current)
            if st is None:
                if last:
                    return current, None
                raise os_error(errno.ENOENT, path)
            if stat.S_ISLNK(st["st_mode"]) and (follow or not last or must_be_dir):
                links += 1
                if links > MAXSYMLINKS:
                    raise os_error(errno.ELOOP, path)
                target = self._call("readlink", path, current)
                if target.startswith("/"):
                    done = []
                pending = [part for part in target.split("/") if part not in ("", ".")] + pending
                if not pending:
                    st = self._lookup("/" + "/".join(done))
                continue
            if not last and not stat.S_ISDIR(st["st_mode"]):
                raise os_error(errno.ENOTDIR, path)
            done.append(name)
        resolved = "/" + "/".join(done)
        if must_be_dir and st is not None and not stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.ENOTDIR, path)
        return resolved, st

    def _existing(self, path: str, follow: bool = True) -> tuple[str, dict[str, int]]:
        resolved, st = self._resolve(path, follow)
        if st is None:
            raise os_error(errno.ENOENT, path)
        return resolved, st

    def _new(self, path: str) -> str:
        """The absolute path for a name to be created; ``EEXIST`` if it is taken."""
        resolved, st = self._resolve(path, follow=False)
        if st is not None:
            raise os_error(errno.EEXIST, path)
        return resolved

    # -- the checks before a rename -------------------------------------------------------
    def _rename_checks(self, src: str, dst: str, flags: int) -> tuple[str, str, bool] | None:
        """What the kernel checks before it sends ``rename`` on, :manpage:`renameat2(2)`.

        :returns: the two resolved paths and whether ``dst`` exists (it is replaced), or
            None when both name one file and there is nothing to do.
        """
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or (
            flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)
        ):
            raise os_error(errno.EINVAL, src, dst)
        for name in (src, dst):
            if name.rstrip("/").rsplit("/", 1)[-1] in (".", ".."):
                raise os_error(errno.EBUSY, src, dst)
        old, old_st = self._resolve(src.rstrip("/") or "/", follow=False)
        new, new_st = self._resolve(dst.rstrip("/") or "/", follow=False)  # both parents first
        if old_st is None:
            raise os_error(errno.ENOENT, src, dst)
        is_dir = stat.S_ISDIR(old_st["st_mode"])
        if not is_dir and (src.endswith("/") or dst.endswith("/")):
            raise os_error(errno.ENOTDIR, src, dst)
        if flags & RENAME_EXCHANGE and new_st is None:
            raise os_error(errno.ENOENT, src, dst)
        if flags & RENAME_NOREPLACE and new_st is not None:
            raise os_error(errno.EEXIST, src, dst)
        if old == "/" or new == "/":
            raise os_error(errno.EBUSY, src, dst)
        if new.startswith(old + "/"):
            raise os_error(errno.EINVAL, src, dst)
        if old.startswith(new + "/"):
            raise os_error(errno.EINVAL if flags & RENAME_EXCHANGE else errno.ENOTEMPTY, src, dst)
        if new_st is not None and not flags & RENAME_EXCHANGE:
            if old_st.get("st_ino") and old_st.get("st_ino") == new_st.get("st_ino"):
                return None  # two names of one file: nothing to do
            if is_dir and not stat.S_ISDIR(new_st["st_mode"]):
                raise os_error(errno.ENOTDIR, src, dst)
            if not is_dir and stat.S_ISDIR(new_st["st_mode"]):
                raise os_error(errno.EISDIR, src, dst)
        return old, new, new_st is not None

    # -- asking the dispatcher ------------------------------------------------------------
    def _call(self, method: str, path: str, *args: Any, path2: str | None = None) -> Any:
        """Call a dispatcher op as the kernel would: what it raises becomes an
        :class:`OSError` with the errno the mount would answer
        (:func:`~defuse2.errors.errno_for`, which logs what has none), labelled with the
        caller's path(s).

        A :class:`KeyboardInterrupt` goes on up: in-process, it is your Ctrl-C.
        """
        try:
            result = getattr(self.dispatcher, method)(*args)
            if method == "getattr":
                check_stat(result)  # what the mount's binding refuses to pack
            return result
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            served = args[0] if args and isinstance(args[0], str) else None
            code = errno_for(exc, method, served, lambda: self.dispatcher.served_by(served))
            raise os_error(code, path, path2) from exc if code == errno.EIO else None

    # -- the descriptor table -------------------------------------------------------------
    def _add(self, desc: Descriptor) -> int:
        with self._lock:
            fd = max(self._fds, default=2) + 1
            self._fds[fd] = desc
        return fd

    def _fd(self, fd: int, access: str = "") -> Descriptor:
        desc = self._fds.get(fd)
        if desc is None:
            raise os_error(errno.EBADF)
        mode = desc.flags & O_ACCMODE
        if (access == "r" and mode == os.O_WRONLY) or (access == "w" and mode == os.O_RDONLY):
            raise os_error(errno.EBADF)
        if access and desc.is_dir:
            raise os_error(errno.EISDIR)
        return desc

    def _renamed(self, old: str, new: str | None) -> None:
        """Keep the paths of open descriptors (and the working directory) in step with a
        rename (None: removed)."""
        if new is not None and (self._cwd == old or self._cwd.startswith(old.rstrip("/") + "/")):
            self._cwd = new + self._cwd[len(old) :]
        with self._lock:
            descriptors = list(self._fds.values())
        for desc in descriptors:
            if desc.path is None:
                continue
            if desc.path == old:
                desc.path = new
            elif new is not None and desc.path.startswith(old.rstrip("/") + "/"):
                desc.path = new + desc.path[len(old) :]
