"""The defuse2 filesystems the benchmarks mount (``python -m defuse2 mount bench_targets:NAME``).

Where it sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> these.

``store_fs``
    ``FileSystem()`` exactly as a user gets it: every path served by the
    default MemoryStore. Only the quota is raised so the large workloads fit.
``routed_fs``
    One routed resource serves every path. Its methods do the same in-memory
    work as the raw reference (they call the very same :class:`MemoryTree`),
    so the difference between ``routed`` and ``raw`` is what the framework
    costs: routing, argument injection, result conversion, the adapter.
``hello_fs``
    One routed resource, ``/<name>.<ext>``: 16 files of 8 KiB to stat, read and
    rewrite in place, for ``routed_overhead.py``.
``hello_blocking_fs``, ``hello_async_fs``
    The same with the route marked ``blocking`` (its methods run on the pool), and with
    ``async def`` methods (run on the event loop), for ``slow_calls.py``.
"""

from __future__ import annotations

import errno
from typing import Any

from raw_reference import MemoryTree

from defuse2 import FileSystem, Resource

#: Enough for the 10x scaling run of the largest workload, plus slack.
QUOTA = "16 GiB"

store_fs = FileSystem(quota=QUOTA)

routed_fs = FileSystem()
_tree = MemoryTree()


@routed_fs.route("/")
@routed_fs.route("/<path:rest>")
class Tree(Resource):
    """Every operation the workloads use, forwarded to the raw reference's tree."""

    def getattr(self, path: str) -> dict[str, int]:
        return _tree.getattr(path)

    def readdir(self, path: str) -> list[str]:
        return list(_tree.children[path])

    def mkdir(self, path: str, mode: int) -> None:
        _tree.mkdir(path, mode)

    def rmdir(self, path: str) -> None:
        _tree.rmdir(path)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        _tree.mknod(path, mode, dev)

    def create(self, path: str, mode: int, flags: int) -> int:
        return _tree.create(path, mode, flags)

    def open(self, path: str, flags: int) -> int:
        return 0

    def unlink(self, path: str) -> None:
        _tree.unlink(path)

    def truncate(self, path: str, length: int) -> None:
        _tree.truncate(path, length)

    def utimens(self, path: str, times: Any) -> None:
        _tree.utimens(path, times)

    def chmod(self, path: str, mode: int) -> None:
        _tree.chmod(path, mode)

    def read(self, path: str, size: int, offset: int) -> bytes:
        return _tree.read(path, size, offset, 0)

    def write(self, path: str, data: bytes, offset: int) -> int:
        return _tree.write(path, data, offset, 0)

    # No flush and no release, as in the raw reference: a registered flush is one
    # more round trip per close(2) that an in-memory tree does not need.


hello_fs = FileSystem()
#: 16 files of 8 KiB each, rewritten in place (a write never changes a size).
HELLO = {f"file{index}": bytearray(b"%d" % (index % 10)) * 8192 for index in range(16)}
HELLO_ATTRS = {
    name: {
        "st_mode": 0o100644,
        "st_nlink": 1,
        "st_size": len(data),
        "st_uid": 0,
        "st_gid": 0,
        "st_atime": 0,
        "st_mtime": 0,
        "st_ctime": 0,
    }
    for name, data in HELLO.items()
}


@hello_fs.route("/<name>.<ext>")
class Hello(Resource):
    """The routed side of ``routed_overhead.py``: a dict lookup and a slice."""

    def getattr(self, name: str) -> dict[str, int]:
        try:
            return HELLO_ATTRS[name]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file") from None

    def read(self, size: int, offset: int, name: str) -> bytes:
        return bytes(HELLO[name][offset : offset + size])

    def write(self, data: bytes, offset: int, name: str) -> int:
        HELLO[name][offset : offset + len(data)] = data
        return len(data)


hello_blocking_fs = FileSystem()
hello_blocking_fs.add_route("/<name>.<ext>", Hello, blocking=True)

hello_async_fs = FileSystem()


@hello_async_fs.route("/<name>.<ext>")
class AsyncHello(Resource):
    """``Hello`` with ``async def`` methods: run on the filesystem's event loop."""

    async def getattr(self, name: str) -> dict[str, int]:
        try:
            return HELLO_ATTRS[name]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file") from None

    async def read(self, size: int, offset: int, name: str) -> bytes:
        return bytes(HELLO[name][offset : offset + size])

    async def write(self, data: bytes, offset: int, name: str) -> int:
        HELLO[name][offset : offset + len(data)] = data
        return len(data)
