"""The FUSE operations defuse2 speaks, with their arguments.

Where this sits: libfuse's high-level API (``struct fuse_operations`` in ``fuse.h``) calls
one function per operation; the binding (mfusepy or fusepy) turns each into a Python
method with the arguments named below; defuse2 keeps those names, so a resource method
asks for ``size`` and ``offset`` exactly as a fusepy ``Operations.read`` receives them.

Each entry lists the arguments *after* the path. The path is what the route matches: for
``symlink`` and ``link`` that is ``target`` (the new name), for ``rename`` it is ``old``.
"""

from __future__ import annotations

#: Operation name -> the argument names a resource method may ask for (besides the route
#: variables, ``path`` and ``ctx``).
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "getattr": ("fh",),
    "readdir": ("fh",),
    "readlink": (),
    "access": ("amode",),
    "statfs": (),
    "mknod": ("mode", "dev"),
    "mkdir": ("mode",),
    "unlink": (),
    "rmdir": (),
    "symlink": ("target", "source"),
    "rename": ("old", "new", "flags"),
    "link": ("target", "source"),
    "chmod": ("mode", "fh"),
    "chown": ("uid", "gid", "fh"),
    "truncate": ("length", "fh"),
    "utimens": ("times", "fh"),
    "create": ("mode", "flags"),
    "open": ("flags",),
    "read": ("size", "offset", "fh"),
    "write": ("data", "offset", "fh"),
    "fallocate": ("mode", "offset", "size", "fh"),
    "flush": ("fh",),
    "fsync": ("datasync", "fh"),
    "release": ("fh",),
    "opendir": (),
    "releasedir": ("fh",),
    "getxattr": ("name",),
    "setxattr": ("name", "value", "options"),
    "listxattr": (),
    "removexattr": ("name",),
}

#: Names every resource method may ask for, whatever the operation.
EXTRAS = ("path", "ctx")

#: Operations that change something. On a resource that lacks one, the answer is EROFS:
#: the resource is read-only, never a silent success.
MUTATING = frozenset(
    {
        "mknod",
        "mkdir",
        "unlink",
        "rmdir",
        "symlink",
        "rename",
        "link",
        "chmod",
        "chown",
        "truncate",
        "utimens",
        "create",
        "write",
        "fallocate",
        "setxattr",
        "removexattr",
    }
)

#: Operations that ask the store for a ``ctx`` (who is asking) when it serves them.
NEEDS_CONTEXT = MUTATING | {"access", "open", "opendir"}
