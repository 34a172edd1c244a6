"""The FUSE operations defuse2 speaks: one table, from which the rest follows.

Where this sits: libfuse's high-level API (``struct fuse_operations`` in ``fuse.h``) calls
one function per operation; the binding (mfusepy or fusepy) turns each into a Python
method with the arguments named below; defuse2 keeps those names, so a resource method
asks for ``size`` and ``offset`` exactly as a fusepy ``Operations.read`` receives them.

:data:`OPERATIONS` states each operation once: its arguments, what a resource method may
return, its man page, whether it changes anything, how it uses paths and handles, what
defuse2 answers for a resource that lacks it, and the system calls that reach it. The
adapter registers what it lists, the trace names arguments by it, registration checks
signatures against it, the dispatcher converts and checks return values by it, the
typing stubs of :class:`~defuse2.Resource` and the operations reference page in the
docs are generated from it (:mod:`defuse2.generate`). Adding an operation is one row
here (and its method in the adapter and the dispatcher).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Literal

#: What a resource method's answer is turned into, and checked as (see
#: :mod:`defuse2.answers`), with the annotation of the typing stubs.
RESULTS: dict[str, str] = {
    "attributes": "Attributes | Mapping[str, Any]",
    "names": "Iterable[str | tuple[str, Any]]",
    "text": "str | bytes",
    "handle": "int | None",
    "data": "bytes | str",
    "count": "int | None",
    "statvfs": "Mapping[str, int]",
    "xattr_names": "Iterable[str]",
    "nothing": "None",
}

Result = Literal[
    "attributes", "names", "text", "handle", "data", "count", "statvfs", "xattr_names", "nothing"
]
#: How an operation uses file handles: ``"optional"`` and ``"required"`` take ``fh`` (the
#: handle ``open``/``create``/``opendir`` returned; optional: ``None`` when the call names
#: a path), ``"returns"`` makes one, ``"releases"`` ends one.
Handle = Literal["", "optional", "required", "returns", "releases"]


@dataclass(frozen=True)
class Operation:
    """One FUSE operation, as defuse2 speaks it."""

    #: libfuse's name, which is also the method's.
    name: str
    #: The man page of the system call behind it: ``"stat(2)"``.
    manpage: str
    #: What it does, in one line.
    summary: str
    #: The arguments after the path, with fusepy's names and their types.
    arguments: tuple[tuple[str, str], ...]
    #: What a resource method may return (see :data:`RESULTS`).
    result: Result
    #: How the return value may look, for the docs.
    returns: str
    #: Whether it changes anything (then a resource lacking it is read-only: ``EROFS``).
    mutating: bool
    #: What defuse2 answers for a resource that does not define it.
    when_missing: str
    #: The system calls (and tools) that reach it.
    syscalls: str
    #: The argument whose path picks the route: ``path``; ``target`` for ``symlink`` and
    #: ``link`` (the new name), ``old`` for ``rename``.
    routed_by: str = "path"
    #: How it uses file handles (see :data:`Handle`).
    handle: Handle = ""
    #: Whether a store's method takes the keyword ``ctx`` (who asks).
    store_context: bool = False
    #: Whether it is an extended-attribute operation (left out with ``xattrs=False``).
    xattr: bool = False
    #: The errno answered for a resource that lacks it; 0: an answer the dispatcher
    #: derives, as :attr:`when_missing` says.
    missing_errno: int = 0
    #: The same for a resource that defines ``write`` (0: as for any other).
    writable_missing_errno: int = 0
    #: Whether defuse2 keeps the value for a resource that defines ``write`` but not this
    #: (:mod:`defuse2.kept`).
    kept: bool = False

    @property
    def argument_names(self) -> tuple[str, ...]:
        """The names of :attr:`arguments`."""
        return tuple(name for name, _type in self.arguments)


_FH = ("fh", "int")
_OPTIONAL_FH = ("fh", "int | None")
_EROFS = "``EROFS``: the resource is read-only."
_KEPT = (
    "On a resource that defines ``write``: defuse2 keeps the value in memory, for as "
    "long as the mount, and ``getattr`` reports it; otherwise ``EROFS``."
)
_NOTHING = "Nothing to do: success."

#: Every operation, in the order of ``struct fuse_operations``.
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        Operation(
            "getattr", "stat(2)", "The attributes of a path: type, mode, size, owner, times.",
            (_OPTIONAL_FH,), "attributes",
            "An :class:`~defuse2.Attributes` value, a ``st_*`` mapping (times in ns), or a "
            "mapping of :class:`~defuse2.Attributes` fields.",
            False,
            "Derived: a directory if it defines ``readdir``, else a file as long as what "
            "``read`` returns, writable if it defines ``write``.",
            "stat, lstat, fstat, statx; every path lookup (``open``, ``ls -l``, ``cd``).",
            handle="optional",
        ),
        Operation(
            "readlink", "readlink(2)", "The target of a symbolic link.",
            (), "text", "``str`` (or ``bytes``).", False,
            "``EINVAL``: not a symbolic link.",
            "readlink; following a symlink in any path.", missing_errno=errno.EINVAL,
        ),
        Operation(
            "mknod", "mknod(2)", "Make a file, FIFO or device node.",
            (("mode", "int"), ("dev", "int")), "nothing", "``None``.", True, _EROFS,
            "mknod, mkfifo; ``open(O_CREAT)`` where ``create`` is missing.",
            store_context=True, missing_errno=errno.EROFS,
        ),
        Operation(
            "mkdir", "mkdir(2)", "Make a directory.",
            (("mode", "int"),), "nothing", "``None``.", True, _EROFS, "mkdir.",
            store_context=True, missing_errno=errno.EROFS,
        ),
        Operation(
            "unlink", "unlink(2)", "Remove a name.",
            (), "nothing", "``None``.", True, _EROFS, "unlink, ``rm``.", store_context=True,
            missing_errno=errno.EROFS,
        ),
        Operation(
            "rmdir", "rmdir(2)", "Remove an empty directory.",
            (), "nothing", "``None``.", True, _EROFS, "rmdir.", store_context=True,
            missing_errno=errno.EROFS,
        ),
        Operation(
            "symlink", "symlink(2)", "Make ``target``, a symbolic link whose content is "
            "``source``.",
            (("target", "str"), ("source", "str")), "nothing", "``None``.", True, _EROFS,
            "symlink, ``ln -s``.", routed_by="target", store_context=True,
            missing_errno=errno.EROFS,
        ),
        Operation(
            "rename", "rename(2)", "Move ``old`` to ``new`` (``flags``: "
            ":manpage:`renameat2(2)`'s ``RENAME_NOREPLACE``, ``RENAME_EXCHANGE``).",
            (("old", "str"), ("new", "str"), ("flags", "int")), "nothing", "``None``.", True,
            _EROFS + " Between a resource and the store: ``EXDEV``.",
            "rename, renameat2, ``mv``.", routed_by="old", store_context=True,
            missing_errno=errno.EROFS,
        ),
        Operation(
            "link", "link(2)", "Make ``target``, a new name of ``source``.",
            (("target", "str"), ("source", "str")), "nothing", "``None``.", True,
            _EROFS + " Between a resource and the store: ``EXDEV``.",
            "link, ``ln``.", routed_by="target", store_context=True,
            missing_errno=errno.EROFS,
        ),
        Operation(
            "chmod", "chmod(2)", "Change the permission bits.",
            (("mode", "int"), _OPTIONAL_FH), "nothing", "``None``.", True, _KEPT,
            "chmod, fchmod; ``cp -p``, ``tar x``.", handle="optional", store_context=True,
            missing_errno=errno.EROFS, kept=True,
        ),
        Operation(
            "chown", "chown(2)", "Change the owner and group (``-1`` keeps one).",
            (("uid", "int"), ("gid", "int"), _OPTIONAL_FH), "nothing", "``None``.", True,
            _KEPT, "chown, fchown, lchown; ``cp -p``, ``tar x`` as root.",
            handle="optional", store_context=True, missing_errno=errno.EROFS, kept=True,
        ),
        Operation(
            "truncate", "truncate(2)", "Set the size: cut, or extend with zeros.",
            (("length", "int"), _OPTIONAL_FH), "nothing", "``None``.", True, _EROFS,
            "truncate, ftruncate; ``open(O_TRUNC)`` on libfuse 2 (see ``open``).",
            handle="optional", store_context=True, missing_errno=errno.EROFS,
        ),
        Operation(
            "open", "open(2)", "Open a file, with the ``flags`` the caller gave.",
            (("flags", "int"),), "handle",
            "A handle (an ``int`` from 0 to 2**64-1) passed as ``fh`` to the calls on "
            "this open file, or ``None`` (0).", False,
            "Opening for reading succeeds; for writing only if the resource defines "
            "``write`` (else ``EROFS``). With ``O_TRUNC`` (libfuse 3 sends it, and no "
            "``truncate``) defuse2 calls the resource's ``truncate`` with length 0 after "
            "``open``; ``EROFS`` if it has none.",
            "open, creat, openat of an existing file.", handle="returns", store_context=True,
        ),
        Operation(
            "read", "pread(2)", "Up to ``size`` bytes at ``offset``.",
            (("size", "int"), ("offset", "int"), _FH), "data",
            "``bytes`` or ``str`` (UTF-8); more than ``size`` is cut. Fewer means the end "
            "of the file.", False,
            "``EISDIR`` for a directory, else ``ENOTSUP``.", "read, pread, readv; ``cat``.",
            handle="required",
        ),
        Operation(
            "write", "pwrite(2)", "Write ``data`` (``bytes``) at ``offset``.",
            (("data", "bytes"), ("offset", "int"), _FH), "count",
            "``None`` (all of ``data`` was written) or the number of bytes written, from "
            "0 to ``len(data)``.", True, _EROFS, "write, pwrite, writev; ``echo >``.",
            handle="required", store_context=True, missing_errno=errno.EROFS,
        ),
        Operation(
            "statfs", "statvfs(3)", "Capacity and use of the filesystem.",
            (), "statvfs", "A mapping of ``f_*`` fields of :manpage:`statvfs(3)`.", False,
            "The store's figures, so ``df`` is truthful.", "statfs, statvfs; ``df``.",
        ),
        Operation(
            "flush", "close(2)", "Each ``close`` of a descriptor (``dup`` makes several).",
            (_FH,), "nothing",
            "``None``. An error fails the ``close`` that caused it: report a failed save "
            "here.", False, _NOTHING, "close.", handle="required",
        ),
        Operation(
            "release", "close(2)", "The last ``close`` of an open file: forget ``fh``.",
            (_FH,), "nothing", "``None``; errors reach nobody.", False, _NOTHING,
            "the last close of an open file description.", handle="releases",
        ),
        Operation(
            "fsync", "fsync(2)", "Make the file durable (``datasync``: data only).",
            (("datasync", "int"), _FH), "nothing", "``None``.", False, _NOTHING,
            "fsync, fdatasync.", handle="required",
        ),
        Operation(
            "setxattr", "setxattr(2)", "Set the extended attribute ``name`` (``options``: "
            "``XATTR_CREATE``, ``XATTR_REPLACE``).",
            (("name", "str"), ("value", "bytes"), ("options", "int")), "nothing",
            "``None``.", True,
            "``ENOTSUP`` on a resource that defines ``write``, otherwise ``EROFS``.",
            "setxattr, lsetxattr, fsetxattr; ``cp -a``.", store_context=True, xattr=True,
            missing_errno=errno.EROFS, writable_missing_errno=errno.ENOTSUP,
        ),
        Operation(
            "getxattr", "getxattr(2)", "The value of the extended attribute ``name``.",
            (("name", "str"),), "data", "``bytes`` or ``str``.", False,
            "``ENODATA``: no such attribute.",
            "getxattr; ``ls -l`` (ACLs, SELinux label); the kernel, for "
            "``security.capability``, before each write.",
            xattr=True, missing_errno=errno.ENODATA,
        ),
        Operation(
            "listxattr", "listxattr(2)", "The names of the extended attributes.",
            (), "xattr_names", "Names (``str``).", False, "None.", "listxattr; ``getfattr``.",
            xattr=True,
        ),
        Operation(
            "removexattr", "removexattr(2)", "Remove the extended attribute ``name``.",
            (("name", "str"),), "nothing", "``None``.", True,
            "``ENOTSUP`` on a resource that defines ``write``, otherwise ``EROFS``.",
            "removexattr; ``setfattr -x``.", store_context=True, xattr=True,
            missing_errno=errno.EROFS, writable_missing_errno=errno.ENOTSUP,
        ),
        Operation(
            "opendir", "opendir(3)", "Open a directory for listing.",
            (), "handle", "A handle passed as ``fh`` to ``readdir`` and ``releasedir``, or "
            "``None`` (0).", False, "Success for a directory, ``ENOTDIR`` otherwise.",
            "opendir, ``open(O_DIRECTORY)``; ``ls``.", handle="returns", store_context=True,
        ),
        Operation(
            "readdir", "readdir(3)", "The names in a directory.",
            (("fh", "int"),), "names",
            "Names, or ``(name, attributes)`` pairs; ``.`` and ``..`` are added, and so "
            "are the static routes below and what the store holds there.", False,
            "The static routes below and the store's names, for a directory; else "
            "``ENOTDIR``.", "getdents64; ``ls``.", handle="required",
        ),
        Operation(
            "releasedir", "closedir(3)", "Close a directory handle.",
            (_FH,), "nothing", "``None``.", False, _NOTHING, "closedir.", handle="releases",
        ),
        Operation(
            "access", "access(2)", "Whether the caller may read, write or run a path "
            "(``amode``: ``os.R_OK``, ``W_OK``, ``X_OK``).",
            (("amode", "int"),), "nothing",
            "``None`` to allow; raise ``PermissionError`` to refuse.", False,
            "Allowed if the path exists; asking to write a resource that defines neither "
            "``write``, ``create`` nor ``mkdir`` is ``EROFS``.",
            "access, faccessat (only without ``default_permissions``: with it, the kernel "
            "checks the modes itself).",
            store_context=True,
        ),
        Operation(
            "create", "open(2)", "Create and open a new file (``open`` with ``O_CREAT``).",
            (("mode", "int"), ("flags", "int")), "handle",
            "A handle, as from ``open``.", True, _EROFS,
            "open, creat with ``O_CREAT`` of a name that does not exist; ``touch``, "
            "``echo >``.",
            handle="returns", store_context=True, missing_errno=errno.EROFS,
        ),
        Operation(
            "utimens", "utimensat(2)", "Set the access and modification times.",
            (("times", "tuple[int, int] | None"), _OPTIONAL_FH), "nothing", "``None``.",
            True, _KEPT,
            "utimensat, futimens, utime; ``touch``, ``cp -p``, ``tar x``.",
            handle="optional", store_context=True, missing_errno=errno.EROFS, kept=True,
        ),
        Operation(
            "fallocate", "fallocate(2)", "Reserve space, or punch a hole (``mode``).",
            (("mode", "int"), ("offset", "int"), ("size", "int"), _FH), "nothing",
            "``None``.", True,
            "``EOPNOTSUPP``, so :manpage:`posix_fallocate(3)` writes zeros instead.",
            "fallocate, posix_fallocate.", handle="required", store_context=True,
            missing_errno=errno.EOPNOTSUPP,
        ),
    ]
}  # fmt: skip

#: Operation name -> the argument names a resource method may ask for (besides the route
#: variables, ``path`` and ``ctx``), in the order the binding passes them.
ARGUMENTS: dict[str, tuple[str, ...]] = {name: op.argument_names for name, op in OPERATIONS.items()}

#: Names every resource method may ask for, whatever the operation.
EXTRAS = ("path", "ctx")

#: Operations that change something. A resource that lacks one never answers with a
#: silent success: ``EROFS`` or what :attr:`Operation.when_missing` says.
MUTATING = frozenset(name for name, op in OPERATIONS.items() if op.mutating)

#: The extended-attribute operations.
XATTRS = frozenset(name for name, op in OPERATIONS.items() if op.xattr)

#: Operations whose first two arguments are paths, shown as ``first -> second``.
TWO_PATHS = frozenset(name for name, op in OPERATIONS.items() if op.routed_by != "path")

#: Operations that return a new file handle.
OPENING = frozenset(name for name, op in OPERATIONS.items() if op.handle == "returns")
