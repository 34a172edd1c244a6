"""The mount options libfuse 2 and 3 know, so that a misspelt one is refused by name.

Where this sits: between the caller and libfuse. ``fs.mount(path, allow_other=True)``
and ``-o allow_other`` become libfuse's ``-o`` options; libfuse answers an option it does
not know with "unknown option" and a bare exit status, after the mount has begun, and a
flag that only one major knows (``big_writes`` on libfuse 3) fails the same way. Here
each name is checked first, against the tables of libfuse's own sources (``lib/fuse.c``,
``lib/helper.c``, ``lib/fuse_lowlevel.c`` and ``lib/mount.c`` of 2.9 and 3.x), and a
wrong one is refused with the nearest right names. An option this table lacks (a newer
libfuse's) can still be passed on unchecked: ``unchecked_options={"name": value}`` in
Python, ``--unchecked-option NAME[=VALUE]`` on the command line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .errors import DefuseError

#: Options defuse2 reads itself; only some of them reach libfuse (see :func:`check_options`).
DEFUSE2 = frozenset({"threads", "nothreads", "xattrs", "nonempty"})

#: Options both majors accept: kernel and ``fusermount`` mount options, the high-level
#: library's, and those mfusepy moves into libfuse 3's ``fuse_config``.
COMMON = frozenset(
    {
        # mount(2) and fusermount (lib/mount.c)
        "allow_other", "allow_root", "auto_unmount", "blkdev", "blksize", "context",
        "defcontext", "default_permissions", "fscontext", "fsname", "max_read",
        "rootcontext", "subtype", "user", "ro", "rw", "suid", "nosuid", "dev", "nodev",
        "exec", "noexec", "async", "sync", "dirsync", "atime", "noatime",
        # the high-level library (lib/fuse.c)
        "kernel_cache", "auto_cache", "noauto_cache", "umask", "uid", "gid",
        "entry_timeout", "attr_timeout", "ac_attr_timeout", "negative_timeout",
        "noforget", "remember", "modules", "debug",
        # libfuse 2 options that libfuse 3 moved into fuse_config; mfusepy sets them there
        "use_ino", "hard_remove", "readdir_ino", "direct_io", "nopath", "intr",
        "intr_signal",
    }
)  # fmt: skip

#: Options of libfuse 2 only (its low-level library, and ``nonempty`` of its fusermount).
LIBFUSE2_ONLY = frozenset(
    {
        "large_read", "max_write", "max_readahead", "max_background",
        "congestion_threshold", "async_read", "sync_read", "atomic_o_trunc",
        "no_remote_lock", "no_remote_flock", "no_remote_posix_lock", "big_writes",
        "splice_write", "no_splice_write", "splice_move", "no_splice_move", "splice_read",
        "no_splice_read",
    }
)  # fmt: skip

#: Options of libfuse 3 only (its command-line helper and high-level library).
LIBFUSE3_ONLY = frozenset(
    {"clone_fd", "max_idle_threads", "max_threads", "no_rofd_flush", "writeback_cache"}
)


class OptionError(DefuseError):
    """A mount option libfuse would refuse: misspelt, or of the other libfuse major."""


def known_options(major: int) -> frozenset[str]:
    """Every option name a mount on libfuse ``major`` accepts (defuse2's own included)."""
    return DEFUSE2 | COMMON | (LIBFUSE2_ONLY if major == 2 else LIBFUSE3_ONLY)


def check_options(options: Mapping[str, object], *, major: int) -> None:
    """Refuse an option name libfuse ``major`` does not know, naming the fix.

    :raises OptionError: a misspelt option (with the nearest known names), or one that
        only the other libfuse major knows.
    """
    known = known_options(major)
    for name in options:
        if name in known:
            continue
        other = LIBFUSE3_ONLY if major == 2 else LIBFUSE2_ONLY
        if name in other:
            raise OptionError(
                f"mount option {name!r} exists on libfuse {5 - major} only, and this mount "
                f"uses libfuse {major}; leave it out (defuse2 sets what each major needs)"
            )
        close = difflib.get_close_matches(name, sorted(known | other), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise OptionError(
            f"unknown mount option {name!r}{hint}. An option that your libfuse knows but "
            f"defuse2 does not can be passed on unchecked: unchecked_options={{{name!r}: "
            f"...}} in Python, --unchecked-option {name} on the command line"
        )
