"""Restore: a tar archive's members added to a store's tree, all or nothing.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
archive -> **restore**. :func:`restore` is the second half of
:func:`defuse2.store.archive.import_tar`, which opens the archive.

The archive's headers are read and checked first (names, lengths, xattrs, conflicts: an
existing non-directory where the archive has an entry is ``EEXIST``; directories
merge); the nodes, symlink targets and xattrs are reserved from the quota; the new nodes
are then built out of sight, each piece of file data reserved before it is copied
(holes, and chunks of zeros, stay holes and cost nothing); only when all of it fits are
they attached, in one step under the namespace lock. If anything fails (``ENOSPC``
included) every reservation is given back and the store is exactly as before. ctime
becomes the time of the restore, as POSIX requires.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import time
from decimal import Decimal
from typing import IO

from defuse2.store import xattrs
from defuse2.store.content import CHUNK_SIZE
from defuse2.store.inode import Inode
from defuse2.store.namespace import Namespace, entry_cost, is_hidden
from defuse2.store.paths import PATH_MAX, byte_length, check_name, fail
from defuse2.store.quota import NODE_COST, Quota
from defuse2.store.tarformat import Totals, data_regions, nanoseconds, xattrs_of

_ZEROS = memoryview(bytes(CHUNK_SIZE))


class DamagedArchive(ValueError):
    """An archive that cannot be read: not a tar archive, or one damaged or cut short."""


class _Plan:
    """What an archive will add: its members by relative path, checked."""

    def __init__(self, archive: tarfile.TarFile) -> None:
        self.members: dict[str, tarfile.TarInfo] = {}
        self.top: tarfile.TarInfo | None = None
        for member in archive.getmembers():
            parts = [part for part in member.name.split("/") if part not in ("", ".")]
            if ".." in parts:
                raise fail(errno.EINVAL, member.name)
            if not parts:
                if member.isdir():
                    self.top = member
                continue
            for part in parts:
                check_name(part)
            path = "/".join(parts)
            if member.issym() and (not member.linkname or byte_length(member.linkname) >= PATH_MAX):
                raise fail(errno.ENAMETOOLONG if member.linkname else errno.ENOENT, path)
            for key, value in xattrs_of(member).items():
                xattrs.check_name(key)
                xattrs.check_value(value)
            self.members.pop(path, None)
            self.members[path] = member
        order = {path: index for index, path in enumerate(self.members)}
        for path, member in self.members.items():
            if member.islnk():
                source = self.link_source(member)
                if source is None or order[source] > order[path]:
                    raise fail(errno.ENOENT, path)
                if self.members[source].isdir():
                    raise fail(errno.EPERM, path)

    def link_source(self, member: tarfile.TarInfo) -> str | None:
        """The planned path a hard-link member points at, following chains."""
        seen = 0
        while member.islnk() and seen < len(self.members):
            path = "/".join(p for p in member.linkname.split("/") if p not in ("", "."))
            if path not in self.members:
                return None
            member, seen = self.members[path], seen + 1
            if not member.islnk():
                return path
        return None

    def cost(self, existing: dict[str, Inode], implied: list[str]) -> tuple[int, int]:
        """``(bytes, nodes)`` the new entries take besides file data (an upper bound):
        nodes, names, symlink targets and xattrs."""
        nbytes = nodes = 0
        for path in implied:
            nbytes += NODE_COST + entry_cost(path.rpartition("/")[2])
            nodes += 1
        for path, member in [*self.members.items(), *([("", self.top)] if self.top else [])]:
            if path not in existing:
                nbytes += entry_cost(path.rpartition("/")[2])
                nodes += 1
                if member.islnk():
                    continue
                nbytes += NODE_COST
                if member.issym():
                    nbytes += byte_length(member.linkname)
            found = xattrs_of(member)
            if found:
                nbytes += xattrs.TABLE_COST + sum(xattrs.cost(k, v) for k, v in found.items())
        return nbytes, nodes


class _Budget:
    """Quota taken so far by an import, to give back in one step."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.nbytes = 0
        self.nodes = 0

    def reserve(self, nbytes: int, nodes: int = 0) -> None:
        self.quota.reserve(nbytes, nodes)
        self.nbytes += nbytes
        self.nodes += nodes


def _time(member: tarfile.TarInfo, key: str) -> int:
    text = member.pax_headers.get(key)
    if text is not None:
        return nanoseconds(text)
    return int(Decimal(str(member.mtime)).scaleb(9))


def _apply(node: Inode, member: tarfile.TarInfo, now: int) -> int:
    """Copy the member's metadata onto ``node``; returns the xattr bytes added."""
    node.mode = stat.S_IFMT(node.mode) | (member.mode & 0o7777)
    node.uid, node.gid = member.uid, member.gid
    node.mtime = _time(member, "mtime")
    node.atime = _time(member, "atime") if "atime" in member.pax_headers else node.mtime
    node.ctime = now
    added = 0
    for key, value in xattrs_of(member).items():
        if node.xattrs is None:
            node.xattrs = {}
            node.extra += xattrs.TABLE_COST
            added += xattrs.TABLE_COST
        old = node.xattrs.get(key)
        delta = xattrs.cost(key, value) - (xattrs.cost(key, old) if old is not None else 0)
        node.xattrs[key] = value
        node.extra += delta
        added += delta
    node.changed()
    return added


def _fill(node: Inode, data: IO[bytes], member: tarfile.TarInfo, budget: _Budget) -> None:
    """Copy the member's data regions into ``node``'s content.

    Holes stay holes, and so do whole chunks of zeros within the data.

    :raises DamagedArchive: when the archive ends inside the data.
    """
    content = node.content
    assert content is not None
    for start, length in data_regions(member):
        data.seek(start)
        offset, end = start, start + length
        while offset < end:
            piece = data.read(min(CHUNK_SIZE - offset % CHUNK_SIZE, end - offset))
            if not piece:
                raise DamagedArchive(f"the archive ends inside {member.name}")
            size = len(piece)
            if piece != _ZEROS[:size]:
                piece = piece.rstrip(b"\0")
                budget.reserve(content.write_cost(offset, len(piece)))
                content.write(piece, offset)
            offset += size
    content.truncate(member.size)


def restore(namespace: Namespace, archive: tarfile.TarFile, root: str) -> Totals:
    """Add the members of ``archive`` under the directory ``root``, all or nothing (see
    the module docstring); returns what was added."""
    plan = _Plan(archive)
    with namespace.lock:
        top = namespace.lookup(root)
        if not top.is_dir:
            raise fail(errno.ENOTDIR, root)
        existing, implied = _conflicts(top, plan)
    nbytes, nodes = plan.cost(existing, implied)
    budget = _Budget(namespace.quota)
    try:
        budget.reserve(nbytes, nodes)
        used = _build_and_attach(namespace, archive, plan, top, existing, implied, budget)
    except BaseException:
        namespace.quota.release(budget.nbytes, budget.nodes)
        raise
    namespace.quota.release(budget.nbytes - used)
    regular = [member for member in plan.members.values() if member.isreg()]
    data_bytes = sum(length for member in regular for _, length in data_regions(member))
    return Totals(len(plan.members) + (plan.top is not None), data_bytes)


def _conflicts(top: Inode, plan: _Plan) -> tuple[dict[str, Inode], list[str]]:
    """Existing directories the archive merges with, and parents it must create."""
    existing: dict[str, Inode] = {"": top}
    implied: list[str] = []
    for path in plan.members:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix in existing or prefix in implied:
                continue
            parent = existing.get("/".join(parts[: depth - 1]))
            node = None
            if parent is not None and parent.children is not None:
                node = parent.children.get(parts[depth - 1])
            is_last = depth == len(parts)
            wanted = plan.members.get(prefix)
            if node is not None:
                if not node.is_dir:
                    raise fail(errno.EEXIST if is_last else errno.ENOTDIR, prefix)
                if wanted is not None and not wanted.isdir():
                    raise fail(errno.EEXIST, prefix)
                existing[prefix] = node
            elif wanted is None:
                implied.append(prefix)
            elif not is_last and not wanted.isdir():
                raise fail(errno.ENOTDIR, path)
    return existing, [path for path in implied if path not in plan.members]


def _build_and_attach(
    namespace: Namespace,
    archive: tarfile.TarFile,
    plan: _Plan,
    top: Inode,
    existing: dict[str, Inode],
    implied: list[str],
    budget: _Budget,
) -> int:
    """Build the new nodes detached, then attach them; returns the bytes they use."""
    now = time.time_ns()
    built: dict[str, Inode] = {}
    used = 0
    for path in implied:
        node = built[path] = namespace.new_inode(stat.S_IFDIR | 0o755, top.uid, top.gid, now)
        node.extra = NODE_COST
        used += NODE_COST + entry_cost(path.rpartition("/")[2])
    for path, member in plan.members.items():
        if path in existing:
            continue
        used += entry_cost(path.rpartition("/")[2])
        if member.islnk():
            source = plan.link_source(member)
            assert source is not None
            node = built[source]
            node.nlink += 1
            built[path] = node
            continue
        node = namespace.new_inode(_kind(member), member.uid, member.gid, now)
        node.extra = NODE_COST
        if member.isreg():
            data = archive.extractfile(member)
            assert data is not None
            _fill(node, data, member, budget)
            used += node.content.cost() if node.content is not None else 0
        elif member.issym():
            node.target = member.linkname
            node.extra += byte_length(member.linkname)
        elif member.ischr() or member.isblk():
            node.rdev = os.makedev(member.devmajor, member.devminor)
        used += node.extra
        built[path] = node
    attach: list[tuple[Inode, str, Inode]] = []
    for path, node in built.items():
        parent_path, _, name = path.rpartition("/")
        parent = existing.get(parent_path)
        if parent is None:
            _enter(built[parent_path], name, node)
        else:
            attach.append((parent, name, node))
    with namespace.lock:
        for parent, name, _node in attach:
            assert parent.children is not None
            if parent.nlink == 0 or name in parent.children:
                raise fail(errno.EEXIST, name)
        for parent, name, node in attach:
            namespace.attach(parent, name, node, now)
        for path, member in reversed(plan.members.items()):
            target = existing.get(path) or built[path]
            if member.islnk():
                continue
            with target.lock:
                used += _apply(target, member, now)
        if plan.top is not None:
            with top.lock:
                used += _apply(top, plan.top, now)
    return used


def _enter(directory: Inode, name: str, node: Inode) -> None:
    """Add ``node`` to a directory that is not yet in the tree."""
    assert directory.children is not None
    directory.children[name] = node
    if is_hidden(name):
        directory.hidden_entries += 1
    if node.is_dir:
        directory.nlink += 1
        node.parent = directory


def _kind(member: tarfile.TarInfo) -> int:
    if member.isdir():
        return stat.S_IFDIR
    if member.issym():
        return stat.S_IFLNK
    if member.isfifo():
        return stat.S_IFIFO
    if member.ischr():
        return stat.S_IFCHR
    if member.isblk():
        return stat.S_IFBLK
    return stat.S_IFREG
