"""The things the conformance suite runs against, all behind one ``os``-like interface.

A :class:`Target` has the methods of :class:`defuse2.testing.TestClient` (named like
``os`` functions) with paths *relative to its root*. Three kinds of roots:

- a real directory on tmpfs, driven by :class:`OsApi` (the ``os`` module): this proves
  that the suite encodes what Linux really does;
- a :class:`~defuse2.testing.TestClient` over a store-only ``FileSystem``, with a
  :class:`~defuse2.store.memory.MemoryStore` or a
  :class:`~defuse2.store.directory.DirectoryStore` on tmpfs (which also checks the
  client's own part against answers that come from Linux itself);
- a real mount of such a filesystem, started by :class:`CliMount` through the CLI on
  mfusepy + libfuse 3, mfusepy + libfuse 2 and fusepy, and driven by :class:`OsApi`.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import pickle
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from defuse2.store.base import UTIME_NOW, UTIME_OMIT, Context
from defuse2.testing import ScriptMount

T = TypeVar("T")

TESTS_DIR = Path(__file__).resolve().parent.parent
_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(result: int, *paths: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), *paths[:1], None, *paths[1:2])


class OsApi:
    """The ``os`` module with :class:`~defuse2.testing.TestClient`'s method names."""

    open = staticmethod(os.open)
    read = staticmethod(os.read)
    write = staticmethod(os.write)
    pread = staticmethod(os.pread)
    pwrite = staticmethod(os.pwrite)
    lseek = staticmethod(os.lseek)
    close = staticmethod(os.close)
    fsync = staticmethod(os.fsync)
    ftruncate = staticmethod(os.ftruncate)
    fstat = staticmethod(os.fstat)
    stat = staticmethod(os.stat)
    lstat = staticmethod(os.lstat)
    listdir = staticmethod(os.listdir)
    mkdir = staticmethod(os.mkdir)
    makedirs = staticmethod(os.makedirs)
    mknod = staticmethod(os.mknod)
    rmdir = staticmethod(os.rmdir)
    unlink = staticmethod(os.unlink)
    remove = staticmethod(os.unlink)
    replace = staticmethod(os.replace)
    symlink = staticmethod(os.symlink)
    readlink = staticmethod(os.readlink)
    link = staticmethod(os.link)
    chmod = staticmethod(os.chmod)
    chown = staticmethod(os.chown)
    truncate = staticmethod(os.truncate)
    access = staticmethod(os.access)
    statvfs = staticmethod(os.statvfs)
    getxattr = staticmethod(os.getxattr)
    setxattr = staticmethod(os.setxattr)
    listxattr = staticmethod(os.listxattr)
    removexattr = staticmethod(os.removexattr)
    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    isfile = staticmethod(os.path.isfile)
    islink = staticmethod(os.path.islink)

    @staticmethod
    def rename(src: str, dst: str, flags: int = 0) -> None:
        if not flags:
            return os.rename(src, dst)
        result = _libc.renameat2(
            _AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags)
        )
        _check(result, src, dst)

    @staticmethod
    def utime(
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        if ns is None or not {UTIME_NOW, UTIME_OMIT} & set(ns):
            if ns is not None:
                return os.utime(path, ns=ns, follow_symlinks=follow_symlinks)
            return os.utime(path, times, follow_symlinks=follow_symlinks)
        specs = (_Timespec * 2)(
            *[(0, t) if t in (UTIME_NOW, UTIME_OMIT) else divmod(t, 10**9) for t in ns]
        )
        flags = 0 if follow_symlinks else _AT_SYMLINK_NOFOLLOW
        _check(_libc.utimensat(_AT_FDCWD, os.fsencode(path), specs, flags), path)

    @staticmethod
    def read_bytes(path: str) -> bytes:
        return Path(path).read_bytes()

    @staticmethod
    def write_bytes(path: str, data: bytes) -> int:
        return Path(path).write_bytes(data)


#: Methods whose first argument (or first two) is a path to put under the root.
_ONE_PATH = set(
    [
        "stat",
        "lstat",
        "listdir",
        "mkdir",
        "makedirs",
        "mknod",
        "rmdir",
        "unlink",
        "remove",
        "readlink",
        "chmod",
        "chown",
        "utime",
        "truncate",
        "access",
        "statvfs",
        "getxattr",
        "setxattr",
        "listxattr",
        "removexattr",
        "exists",
        "isdir",
        "isfile",
        "islink",
        "read_bytes",
        "write_bytes",
        "open",
    ]
)
_TWO_PATHS = {"rename", "replace", "link"}
_FDS = set(["read", "write", "pread", "pwrite", "lseek", "close", "fsync", "ftruncate", "fstat"])


#: What a kind of store cannot do, and why: the conformance checks that need it skip
#: there with this reason (the "Choosing a store" guide has the same table).
GAPS: dict[str, dict[str, str]] = {
    "fsspec": {
        "symlinks": "an object store keeps no symlinks (symlink is EPERM)",
        "hard links": "an object store keeps no hard links (link is EPERM)",
        "special files": "an object store keeps no FIFOs, sockets or devices (mknod is EPERM)",
        "xattrs": "an object store keeps no extended attributes (ENOTSUP)",
        "directory rename": "renaming a directory would copy each object under it (EXDEV)",
        "rename exchange": "an object store cannot swap two names at once (EINVAL)",
        "directory nlink": "a directory shows 2 links: counting subdirectories costs a listing",
        "capacity": "an object store has no capacity: statfs reports a nominal 1 PiB",
        "non-UTF-8 names": "object names are Unicode: a name that is not UTF-8 is EILSEQ",
        "permissions between users": "owners are the session's: the store leaves checking "
        "one user against another to the kernel (default_permissions), which the "
        "in-process client does not play",
    },
}
GAPS["directory"] = {
    "long paths": "a DirectoryStore hands the host one path from its root, which PATH_MAX limits",
}
#: FsspecStore on the local S3-API server: S3 and the test server have gaps of their own.
GAPS["s3"] = {
    **GAPS["fsspec"],
    "long paths": "an S3 object key holds at most 1024 bytes",
    "newline names": "the local S3 server (moto) answers 404 for a key with a newline "
    "(S3 itself stores one)",
}
#: A filesystem made of routed resources only (``conformance/routed.py``): what its
#: dict-backed tree leaves out. In-process, the test client checks no permissions (a
#: mount's kernel does, with ``default_permissions``): ``routed-in-process`` adds that.
GAPS["routed"] = {
    "hard links": "the routed tree keeps no hard links (link is EROFS)",
    "special files": "the routed tree keeps no FIFOs, sockets or devices (mknod is EPERM)",
    "xattrs": "a WritableFile keeps no extended attributes (ENOTSUP)",
    "capacity": "the routed tree has no quota: statfs reports the store's figures",
    "inodes follow renames": "a routed path's inode number is the path's: a renamed file "
    "gets the new name's",
    "open after unlink": "a file unlinked or replaced while open: mounted, libfuse renames "
    "it to .fuse_hidden*; in-process, the client hands its handle alone, which no route "
    "can serve",
    "setgid directories": "a new file takes the caller's group, never a setgid directory's",
}
GAPS["routed-in-process"] = {
    **GAPS["routed"],
    "permissions between users": "the test client leaves permission checks to the "
    "resources, and the routed tree makes none (mounted, the kernel makes them)",
}


@dataclass
class Target:
    """An ``os``-like interface over ``api`` with paths relative to ``root``.

    :param name: the test id (``tmpfs``, ``client``, ``mfusepy-fuse3`` ...).
    :param api: :class:`OsApi` or a :class:`~defuse2.testing.TestClient`.
    :param root: the absolute path (in ``api``'s namespace) of this test's directory.
    :param quota: the store's byte quota, or None where there is none to test.
    :param rename_flags: whether :manpage:`renameat2(2)` flags reach the filesystem
        (libfuse 2 speaks an older protocol: the kernel answers EINVAL itself).
    :param mount: the mountpoint, for targets that are real mounts.
    :param binding: the binding serving the mount, and ``libfuse`` its major version.
    :param store: what holds the data: ``host`` (tmpfs itself), ``memory``
        (:class:`~defuse2.store.memory.MemoryStore`), ``directory``
        (:class:`~defuse2.store.directory.DirectoryStore` on tmpfs), ``fsspec``
        (:class:`~defuse2.store.fsspec_store.FsspecStore`), ``routed`` (routed resources
        only, ``routed-in-process`` through the test client), whose :data:`GAPS` apply.
    """

    name: str
    api: Any
    root: str
    quota: int | None = None
    rename_flags: bool = True
    mount: str | None = None
    binding: str | None = None
    libfuse: str | None = None
    store: str = "memory"

    def has(self, feature: str) -> bool:
        """Whether this target's store can do ``feature`` (a key of :data:`GAPS`)."""
        return feature not in GAPS.get(self.store, {})

    def require(self, *features: str | None) -> None:
        """Skip the test, with the documented reason, where the store lacks a feature."""
        for feature in features:
            if feature is not None and not self.has(feature):
                pytest.skip(f"{self.store} store: {GAPS[self.store][feature]}")

    def path(self, relative: str) -> str:
        """The path ``api`` sees for ``relative``."""
        return f"{self.root}/{relative}" if relative not in ("", ".") else self.root

    def symlink(self, src: str, dst: str) -> None:
        """Create the symlink ``dst`` with content ``src`` (content stays as given)."""
        self.api.symlink(src, self.path(dst))

    @contextlib.contextmanager
    def inside(self) -> Iterator[Any]:
        """``api`` with its working directory at the root, to use relative paths with."""
        if isinstance(self.api, OsApi):
            before = os.getcwd()
            os.chdir(self.root)
            try:
                yield self.api
            finally:
                os.chdir(before)
            return
        before = self.api.getcwd()
        self.api.chdir(self.root)
        try:
            yield self.api
        finally:
            self.api.chdir(before)

    def run_as(self, uid: int, groups: Sequence[int], check: Callable[[Target], T]) -> T:
        """``check(self)`` in a child process of user ``uid``, group ``groups[0]`` and
        supplementary groups ``groups`` (as pjdfstest's ``-u uid -g g1,g2``).

        Returns what ``check`` returns; an :class:`OSError` it raises is raised here with
        its errno. Needs root. The check runs in a fork: on in-process targets (the test
        client) what it changes stays in the child, so it reads back what it tests itself.
        """
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                os.close(reader)
                try:
                    os.setgroups(list(groups))
                    os.setresgid(groups[0], groups[0], groups[0])
                    os.setresuid(uid, uid, uid)
                    if not isinstance(self.api, OsApi):
                        umask = self.api.context.umask
                        self.api.context = Context(uid, groups[0], os.getpid(), umask)
                    outcome: tuple[Any, ...] = ("value", check(self))
                except OSError as exc:
                    outcome = ("errno", exc.errno, str(exc))
                except BaseException:
                    outcome = ("error", traceback.format_exc())
                with os.fdopen(writer, "wb") as pipe:
                    pipe.write(pickle.dumps(outcome))
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        outcome = pickle.loads(data)
        if outcome[0] == "errno":
            raise OSError(outcome[1], outcome[2])
        if outcome[0] == "error":
            raise AssertionError(f"the check failed as uid {uid}:\n{outcome[1]}")
        return outcome[1]  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.api, name)
        if name in _FDS:
            return method  # type: ignore[no-any-return]
        if name in _TWO_PATHS:
            return lambda src, dst, *a, **k: method(self.path(src), self.path(dst), *a, **k)
        if name in _ONE_PATH:
            return lambda path=".", *a, **k: method(self.path(path), *a, **k)
        raise AttributeError(name)


def errno_of(call: Callable[[], object]) -> int | None:
    """Run ``call``; the errno of the OSError it raised, or None if it succeeded."""
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


# -- real mounts through the CLI -----------------------------------------------------------

#: (id, binding, libfuse major) of every real-mount target.
MOUNTS = [
    ("mfusepy-fuse3", "mfusepy", "3"),
    ("mfusepy-fuse2", "mfusepy", "2"),
    ("fusepy", "fusepy", "2"),
]
_counter = itertools.count()

#: The environment variable naming a libfuse 3 shared library for the libfuse 3 mounts
#: (such as a newer release built locally); unset: the system's.
LIBFUSE3_VARIABLE = "DEFUSE2_TEST_LIBFUSE3"


class CliMount:
    """``python -m defuse2 mount APP MOUNTPOINT --foreground`` in a subprocess.

    A context manager (:class:`~defuse2.testing.ScriptMount` does the mounting): waits
    until the mount is up (or the process died), and always unmounts (``-z`` if the
    filesystem is busy), waits for the process, kills it only if it does not end by
    itself, and removes the mountpoint.
    """

    def __init__(
        self, app: str, binding: str, libfuse: str, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.app, self.binding, self.libfuse, self.extra = app, binding, libfuse, extra
        self.env = env or {}
        self.mountpoint = ""
        handle, self.log = tempfile.mkstemp(prefix="defuse2-mountlog-")
        os.close(handle)
        self.server: ScriptMount | None = None

    def command(self) -> list[str]:
        options = os.environ.get("DEFUSE2_TEST_MOUNT_OPTIONS")  # e.g. attr_timeout=0
        extra = [*self.extra, "-o", options] if options else list(self.extra)
        if os.geteuid() == 0:  # so that checks can run as other users (Target.run_as)
            extra += ["-o", "allow_other"]
        return [
            sys.executable, "-m", "defuse2", "mount", self.app, self.mountpoint, "--foreground",
            "--binding", self.binding, "--libfuse", self.libfuse, *extra,
        ]  # fmt: skip

    def output(self) -> str:
        """What the mount process printed so far (its log)."""
        return Path(self.log).read_text(errors="replace")

    def __enter__(self) -> str:
        self.mountpoint = tempfile.mkdtemp(prefix=f"defuse2-{self.binding}{self.libfuse}-")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
        for name in (
            "FUSE_LIBRARY_NAME",
            "FUSE_LIBRARY_PATH",
            "DEFUSE2_BINDING",
            "DEFUSE2_LIBFUSE",
        ):
            env.pop(name, None)
        if self.libfuse == "3" and os.environ.get(LIBFUSE3_VARIABLE):
            env["FUSE_LIBRARY_PATH"] = os.environ[LIBFUSE3_VARIABLE]
        self.server = ScriptMount(
            self.command(), self.mountpoint, self.log, timeout=30, env=env, major=int(self.libfuse)
        )
        try:
            self.server.start()
        except RuntimeError:
            text = self.output()[-3000:]
            self.__exit__()
            raise RuntimeError(f"mount {self.command()} failed:\n{text}") from None
        return self.mountpoint

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            if self.mountpoint and not os.path.ismount(self.mountpoint):
                os.rmdir(self.mountpoint)
            os.unlink(self.log)  # a failed start has put the log in its exception


def fresh_dir(parent: str) -> str:
    """A new, empty directory under ``parent`` for one test."""
    path = os.path.join(parent, f"t{next(_counter)}")
    os.mkdir(path)
    return path


def remove_tree(path: str) -> None:
    """Remove ``path`` and all it holds, making read-only directories writable first.

    Works relative to open directories, so trees deeper than ``PATH_MAX`` go too.
    """

    def empty(directory: int) -> None:
        for entry in list(os.scandir(directory)):
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.name, 0o700, dir_fd=directory)
                inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=directory)
                try:
                    empty(inner)
                finally:
                    os.close(inner)
                os.rmdir(entry.name, dir_fd=directory)
            else:
                os.unlink(entry.name, dir_fd=directory)

    os.chmod(path, 0o700)
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        empty(top)
    finally:
        os.close(top)
    os.rmdir(path)


def kind(mode: int) -> str:
    """``file``, ``dir``, ``link``, ``fifo`` ... for a ``st_mode``."""
    for name, test in [("file", stat.S_ISREG), ("dir", stat.S_ISDIR), ("link", stat.S_ISLNK)]:
        if test(mode):
            return name
    return "fifo" if stat.S_ISFIFO(mode) else "other"
