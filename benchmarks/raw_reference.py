"""The tuned raw reference: a plain binding ``Operations`` class, no framework.

Where it sits: kernel -> libfuse -> binding (mfusepy or fusepy) -> this class.
It is what an expert writes by hand when speed matters, and what defuse2 is
measured against: one in-place ``bytearray`` per file, a dict of paths, and the
mount options an expert would pick (single-threaded ``-s``, ``big_writes`` and
``max_write=131072`` on libfuse 2, 60 s attribute and entry timeouts).

The same :class:`MemoryTree` also backs the routed defuse2 target in
``bench_targets.py``, so "routed" and "raw" do exactly the same in-memory work
and differ only in the layers above it.

Run on its own::

    python benchmarks/raw_reference.py MOUNTPOINT [--binding mfusepy|fusepy] [--libfuse 2|3]
                                       [--count] [--trace] [-o EXPERIMENT,...]

``--count`` prints every callback and request size at unmount; ``--trace``
prints one line per callback as it arrives, operation and path, like
defuse2's ``--trace`` (``roundtrips.py`` reads both). The ``-o``
experiments (``threads``, ``top_pad=N``, ``one_copy_read``, ``plain_readdir``,
``xattr``, ``readdirplus``, ``cache_readdir``, ``want=N``, ``unwant=N``) are
described in ``benchmarks/README.rst``; any other ``-o`` option goes to libfuse.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import errno
import importlib
import os
import stat
import sys
import time
from typing import Any

#: Options of the tuned raw reference, per libfuse major version.
RAW_OPTIONS = {
    2: {"big_writes": True, "max_write": 131072, "attr_timeout": 60, "entry_timeout": 60},
    3: {"attr_timeout": 60, "entry_timeout": 60},
}


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class MemoryTree:
    """Files, directories and symlinks keyed by full path; file data in place.

    Every method takes fusepy's arguments and returns what fusepy expects, so a
    binding ``Operations`` class can forward to it with no translation.
    """

    def __init__(self) -> None:
        now = time.time_ns()
        self.attrs: dict[str, dict[str, int]] = {}
        self.data: dict[str, bytearray] = {}
        self.children: dict[str, dict[str, None]] = {}
        self.links: dict[str, str] = {}
        self.attrs["/"] = self._new_attrs(stat.S_IFDIR | 0o755, 2, now)
        self.children["/"] = {}

    @staticmethod
    def _new_attrs(mode: int, nlink: int, now: int) -> dict[str, int]:
        return {
            "st_mode": mode,
            "st_nlink": nlink,
            "st_uid": os.getuid(),
            "st_gid": os.getgid(),
            "st_size": 0,
            "st_atime": now,
            "st_mtime": now,
            "st_ctime": now,
        }

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        parent, _, name = path.rpartition("/")
        return parent or "/", name

    def _add(self, path: str, mode: int, nlink: int) -> dict[str, int]:
        if path in self.attrs:
            raise _error(errno.EEXIST)
        parent, name = self._split(path)
        siblings = self.children.get(parent)
        if siblings is None:
            raise _error(errno.ENOENT if parent not in self.attrs else errno.ENOTDIR)
        attrs = self._new_attrs(mode, nlink, time.time_ns())
        self.attrs[path] = attrs
        siblings[name] = None
        return attrs

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        try:
            return self.attrs[path]
        except KeyError:
            raise _error(errno.ENOENT) from None

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *self.children[path]]

    def readlink(self, path: str) -> str:
        return self.links[path]

    def mkdir(self, path: str, mode: int) -> None:
        self._add(path, stat.S_IFDIR | mode, 2)
        self.children[path] = {}
        self.attrs[self._split(path)[0]]["st_nlink"] += 1

    def rmdir(self, path: str) -> None:
        if self.children.get(path):
            raise _error(errno.ENOTEMPTY)
        parent, name = self._split(path)
        del self.children[path], self.attrs[path], self.children[parent][name]
        self.attrs[parent]["st_nlink"] -= 1

    def mknod(self, path: str, mode: int, dev: int) -> None:
        self._add(path, mode, 1)
        self.data[path] = bytearray()

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        self._add(path, stat.S_IFREG | (mode & 0o7777), 1)
        self.data[path] = bytearray()
        return 0

    def symlink(self, target: str, source: str) -> None:
        attrs = self._add(target, stat.S_IFLNK | 0o777, 1)
        self.links[target] = source
        attrs["st_size"] = len(source)

    def unlink(self, path: str) -> None:
        if path not in self.attrs:
            raise _error(errno.ENOENT)
        parent, name = self._split(path)
        del self.attrs[path], self.children[parent][name]
        self.data.pop(path, None)
        self.links.pop(path, None)

    def rename(self, old: str, new: str) -> None:
        if old not in self.attrs:
            raise _error(errno.ENOENT)
        if new in self.attrs:
            (self.rmdir if new in self.children else self.unlink)(new)
        old_parent, old_name = self._split(old)
        new_parent, new_name = self._split(new)
        del self.children[old_parent][old_name]
        self.children[new_parent][new_name] = None
        prefix = old + "/"
        for table in (self.attrs, self.data, self.children, self.links):
            for key in [k for k in table if k == old or k.startswith(prefix)]:
                table[new + key[len(old) :]] = table.pop(key)  # type: ignore[index]

    def chmod(self, path: str, mode: int) -> None:
        attrs = self.getattr(path)
        attrs["st_mode"] = (attrs["st_mode"] & ~0o7777) | (mode & 0o7777)

    def chown(self, path: str, uid: int, gid: int) -> None:
        attrs = self.getattr(path)
        if uid != -1 and uid != 0xFFFFFFFF:
            attrs["st_uid"] = uid
        if gid != -1 and gid != 0xFFFFFFFF:
            attrs["st_gid"] = gid

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        atime, mtime = times if times else (time.time_ns(),) * 2
        attrs = self.getattr(path)
        attrs["st_atime"], attrs["st_mtime"] = atime, mtime

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        data = self.data[path]
        if length < len(data):
            del data[length:]
        else:
            data.extend(bytes(length - len(data)))
        self.attrs[path]["st_size"] = length

    def open(self, path: str, flags: int) -> int:
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return bytes(self.data[path][offset : offset + size])

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        buffer = self.data[path]
        if offset > len(buffer):
            buffer.extend(bytes(offset - len(buffer)))
        buffer[offset : offset + len(data)] = data
        attrs = self.attrs[path]
        attrs["st_size"] = len(buffer)
        attrs["st_mtime"] = attrs["st_ctime"] = time.time_ns()
        return len(data)

    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": 1 << 24,
            "f_bfree": 1 << 23,
            "f_bavail": 1 << 23,
            "f_files": 1 << 20,
            "f_ffree": 1 << 19,
            "f_namemax": 255,
        }


def operations_class(binding: Any) -> type:
    """Build the raw ``Operations`` subclass for *binding* (the imported module).

    Every op is an explicit method that forwards to :class:`MemoryTree`; for
    fusepy the base class' ``__call__`` dispatches by name, for mfusepy the
    binding calls the methods directly.
    """
    tree_methods = [
        "getattr",
        "readdir",
        "readlink",
        "mkdir",
        "rmdir",
        "mknod",
        "create",
        "symlink",
        "unlink",
        "rename",
        "chmod",
        "chown",
        "utimens",
        "truncate",
        "open",
        "read",
        "write",
        "statfs",
    ]

    class RawMemory(binding.Operations):  # type: ignore[misc, name-defined]
        use_ns = True

        def __init__(self) -> None:
            tree = MemoryTree()
            for name in tree_methods:  # bound methods: no extra frame per call
                setattr(self, name, getattr(tree, name))

    # The binding looks the ops up on the instance; the class needs them too so
    # that fusepy's and mfusepy's "is it implemented" checks see them.
    for name in tree_methods:
        setattr(RawMemory, name, getattr(MemoryTree, name))
    if not hasattr(binding, "fuse_version_major"):
        # fusepy registers every method its Operations base defines (mfusepy skips
        # the defaults). An expert unregisters them: a registered getxattr alone
        # costs a GETXATTR round trip before every write.
        for name, *_ in binding.fuse_operations._fields_:
            if (
                name not in tree_methods
                and name not in ("init", "destroy", "ftruncate", "fgetattr")
                and hasattr(RawMemory, name)
            ):
                setattr(RawMemory, name, None)
    return RawMemory


def set_malloc_top_pad(size: int) -> bool:
    """Ask glibc to keep *size* bytes of slack at the top of the heap.

    Without it, every 128 KiB request buffer that Python or libfuse allocates and
    frees grows and trims the heap with ``brk``: two system calls and 32 fresh
    zeroed pages per request. Returns False where ``mallopt`` is unavailable.
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(-2, size))  # M_TOP_PAD
    except (OSError, AttributeError):
        return False


def import_binding(name: str, libfuse: int) -> Any:
    """Import *name* ("mfusepy" or "fusepy") against libfuse *libfuse* (2 or 3)."""
    if name == "fusepy":
        if libfuse != 2:
            raise SystemExit("fusepy supports libfuse 2 only")
        return importlib.import_module("fuse")
    os.environ["FUSE_LIBRARY_NAME"] = "fuse" if libfuse == 2 else "fuse3"
    return importlib.import_module("mfusepy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--binding", choices=["mfusepy", "fusepy"], default="mfusepy")
    parser.add_argument("--libfuse", type=int, choices=[2, 3], default=3)
    parser.add_argument("-o", dest="options", default="", help="extra options a,b=c")
    parser.add_argument(
        "--count", action="store_true", help="count calls and request sizes; print them at unmount"
    )
    parser.add_argument(
        "--trace", action="store_true", help="print each callback's operation and path to stderr"
    )
    args = parser.parse_args(argv)
    binding = import_binding(args.binding, args.libfuse)
    options: dict[str, Any] = dict(RAW_OPTIONS[args.libfuse])
    for item in filter(None, args.options.split(",")):
        key, _, value = item.partition("=")
        options[key] = value if value else True
    threads = options.pop("threads", False)
    if "top_pad" in options:  # experiment: keep freed heap instead of trimming it each request
        set_malloc_top_pad(int(options.pop("top_pad")))
    operations = operations_class(binding)()
    want = int(options.pop("want", 0))  # experiment: extra FUSE_CAP_* bits (libfuse 3)
    unwant = int(options.pop("unwant", 0))  # experiment: FUSE_CAP_* bits to clear
    if want or unwant:

        def init_with_config(conn: Any, config: Any) -> None:
            conn.want = (conn.want | (want & conn.capable)) & ~unwant

        operations.init_with_config = init_with_config
    if options.pop("xattr", False):  # experiment: what registering getxattr costs
        operations.getxattr = _no_xattr
        type(operations).getxattr = _no_xattr
    if args.count:
        _count_calls(operations)
    if args.trace:
        _trace_calls(operations)
    fuse_class = binding.FUSE
    tricks = {
        name: bool(options.pop(name, False))
        for name in ("readdirplus", "cache_readdir", "plain_readdir", "one_copy_read")
    }
    if any(tricks.values()):
        fuse_class = _tuned_fuse_class(binding, operations, **tricks)
    try:
        fuse_class(
            operations,
            args.mountpoint,
            foreground=True,
            nothreads=not threads,
            fsname="raw",
            **options,
        )
    finally:
        if args.count:
            _report_counts(operations)


def _tuned_fuse_class(
    binding: Any,
    operations: Any,
    *,
    readdirplus: bool = False,
    cache_readdir: bool = False,
    plain_readdir: bool = False,
    one_copy_read: bool = False,
) -> type:
    """Experiments on the binding's ``FUSE`` class (mfusepy on libfuse 3 only).

    ``readdirplus``: answer ``READDIRPLUS`` with every entry's attributes
    (``FUSE_FILL_DIR_PLUS``), so ``ls -l`` needs no ``LOOKUP`` per name.
    ``plain_readdir``: hand libfuse each name with no ``struct stat`` (mfusepy
    passes a zeroed one per name, which libfuse copies).
    ``one_copy_read``: ``read`` copies straight from the file's ``bytearray``
    into libfuse's buffer (no slice, no ``bytes``, no allocation).
    ``cache_readdir``: let the kernel keep directory listings in its page cache
    (``fi->cache_readdir`` + ``fi->keep_cache`` on ``opendir``); it drops them
    itself when the directory changes through the mount or its mtime changes.
    """
    major = getattr(binding, "fuse_version_major", 2)
    if (readdirplus or cache_readdir) and major != 3:
        raise SystemExit("readdirplus/cache_readdir need mfusepy on libfuse 3")
    c_stat, set_st_attrs = binding.c_stat, binding.set_st_attrs
    tree_getattr = operations.getattr
    tree_data = operations.read.__self__.data

    class TunedFUSE(binding.FUSE):  # type: ignore[misc, name-defined]
        if readdirplus:

            def readdir_fuse_3(
                self, path: bytes, buf: Any, filler: Any, offset: int, fip: Any, flags: int
            ) -> int:
                directory = path.decode()
                prefix = directory.rstrip("/") + "/"
                if not flags & 1:  # FUSE_READDIR_PLUS
                    for name in operations.readdir(directory, 0):
                        if filler(buf, name.encode(), None, 0, 0):
                            break
                    return 0
                st = c_stat()
                for name in operations.readdir(directory, 0):
                    if name in (".", ".."):
                        if filler(buf, name.encode(), None, 0, 0):
                            break
                        continue
                    ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
                    set_st_attrs(st, tree_getattr(prefix + name), use_ns=True)
                    if filler(buf, name.encode(), st, 0, 2):  # FUSE_FILL_DIR_PLUS
                        break
                return 0

        if plain_readdir:

            def _plain(self, path: bytes, buf: Any, filler: Any, *extra: Any) -> int:
                tail = (0, 0) if major == 3 else (0,)
                for name in operations.readdir(path.decode(), 0):
                    if filler(buf, name.encode(), None, *tail):
                        break
                return 0

            if hasattr(binding.FUSE, "readdir_fuse_3"):  # mfusepy: one per libfuse major
                readdir_fuse_3 = readdir_fuse_2 = _plain
            else:  # fusepy
                readdir = _plain

        if one_copy_read:

            def read(self, path: bytes, buf: Any, size: int, offset: int, fip: Any) -> int:
                data = tree_data[path.decode()]
                count = min(size, len(data) - offset)
                if count <= 0:
                    return 0
                ctypes.memmove(buf, (ctypes.c_char * count).from_buffer(data, offset), count)
                return count

        if cache_readdir:

            def opendir(self, path: bytes, fip: Any) -> int:
                fip.contents.fh = 0
                fip.contents.cache_readdir = 1
                fip.contents.keep_cache = 1
                return 0

    if cache_readdir:
        type(operations).opendir = lambda self, path: 0
    return TunedFUSE


def _no_xattr(path: str, name: str, position: int = 0) -> bytes:
    raise OSError(errno.ENODATA, "no such attribute")


def _count_calls(operations: Any) -> None:
    """Wrap every op of *operations* to count its calls and, for I/O, its bytes."""
    operations.counts = collections.Counter()
    operations.sizes = collections.Counter()
    for name in list(vars(operations)):
        method = getattr(operations, name)
        if not callable(method):
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            operations.counts[_name] += 1
            if _name in ("read", "write"):
                size = args[1] if _name == "read" else len(args[1])
                operations.sizes[f"{_name} {size}"] += 1
            return _method(*args)

        setattr(operations, name, counted)


def _trace_calls(operations: Any) -> None:
    """Wrap every op of *operations* to print ``operation path`` to stderr per call."""
    for name in list(vars(operations)):
        method = getattr(operations, name)
        if not callable(method) or name in ("counts", "sizes"):
            continue

        def traced(*args: Any, _name: str = name, _method: Any = method) -> Any:
            print(_name, args[0] if args else "(no path)", file=sys.stderr)
            return _method(*args)

        setattr(operations, name, traced)


def _report_counts(operations: Any) -> None:
    print("calls:", dict(operations.counts.most_common()), file=sys.stderr)
    print("request sizes:", dict(operations.sizes.most_common(8)), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
