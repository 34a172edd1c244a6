"""Snapshot and restore: a store's tree to a tar archive and back.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**archive**. :meth:`MemoryStore.export_tar` and :meth:`MemoryStore.import_tar` call the
two functions here; the CLI's ``--save``/``--load`` use them so data can outlive a mount.

The archive is POSIX ``pax`` (readable by GNU tar and bsdtar):

- modes, uid and gid in the ustar header; atime, mtime and ctime with nanoseconds as
  ``pax`` ``atime``/``mtime``/``ctime`` records;
- symlinks as symlink members; hard links as hard-link members naming the first path;
- FIFOs and device nodes as such; sockets are skipped (tar cannot hold them);
- xattrs as ``SCHILY.xattr.<name>`` records (names containing ``=`` cannot be written:
  ``ENOTSUP``);
- the exported directory itself as the member ``.``; other names relative to it;
- files unlinked while open (libfuse's ``.fuse_hidden*`` names) are left out;
- holes are written as zeros; on import, any 64 KiB chunk of zeros becomes a hole again.

Import is all or nothing. The archive's headers are read and checked first (names,
lengths, xattrs, conflicts: an existing non-directory where the archive has an entry is
``EEXIST``; directories merge); the nodes, symlink targets and xattrs are reserved from
the quota; the new nodes are then built out of sight, each piece of file data reserved
before it is copied (chunks of zeros become holes and cost nothing); only when all of it
fits are they attached, in one step under the namespace lock. If anything fails (``ENOSPC``
included) every reservation is given back and the store is exactly as before. ctime
becomes the time of import, as POSIX requires.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, BinaryIO, cast

from defuse2.store import xattrs
from defuse2.store.content import CHUNK_SIZE
from defuse2.store.inode import Inode
from defuse2.store.namespace import Namespace, is_hidden
from defuse2.store.paths import PATH_MAX, byte_length, check_name, fail
from defuse2.store.quota import Quota

_XATTR = "SCHILY.xattr."
_ZEROS = memoryview(bytes(CHUNK_SIZE))

Target = str | os.PathLike[str] | BinaryIO


def _seconds(ns: int) -> str:
    return f"{Decimal(ns).scaleb(-9):f}"


def _nanoseconds(text: str) -> int:
    return int(Decimal(text).scaleb(9))


class _ContentReader(io.RawIOBase):
    """A file's content as a readable stream (inode lock held by the caller)."""

    def __init__(self, node: Inode) -> None:
        super().__init__()
        assert node.content is not None
        self._content = node.content
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._content.read(self._offset, len(buffer))
        buffer[: len(data)] = data
        self._offset += len(data)
        return len(data)


def _open_for_writing(target: Target) -> tarfile.TarFile:
    pax, enc, err = tarfile.PAX_FORMAT, "utf-8", "surrogateescape"
    if not isinstance(target, str | os.PathLike):
        return tarfile.open(fileobj=target, mode="w|", format=pax, encoding=enc, errors=err)
    name = os.fspath(target)
    suffix = os.path.splitext(name)[1].lower()
    if suffix in (".gz", ".tgz"):
        return tarfile.open(name, "w:gz", format=pax, encoding=enc, errors=err)
    if suffix in (".bz2", ".tbz"):
        return tarfile.open(name, "w:bz2", format=pax, encoding=enc, errors=err)
    if suffix == ".xz":
        return tarfile.open(name, "w:xz", format=pax, encoding=enc, errors=err)
    return tarfile.open(name, "w", format=pax, encoding=enc, errors=err)


def _walk(top: Inode) -> Iterator[tuple[str, Inode]]:
    """``(relative name, inode)`` for ``top`` (as ``.``) and everything under it, parents first."""
    stack: list[tuple[str, Inode]] = [(".", top)]
    while stack:
        name, node = stack.pop()
        yield name, node
        if node.children is not None:
            prefix = "" if name == "." else name + "/"
            stack.extend(
                (prefix + child, node)
                for child, node in reversed(node.children.items())
                if not is_hidden(child)
            )


def _member(name: str, node: Inode, first_names: dict[int, str]) -> tarfile.TarInfo | None:
    """The tar header for ``node`` (``None`` for a socket); inode lock held."""
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(node.mode)
    info.uid, info.gid = node.uid, node.gid
    info.uname = info.gname = ""
    info.mtime = node.mtime // 10**9
    info.pax_headers = {
        "mtime": _seconds(node.mtime),
        "atime": _seconds(node.atime),
        "ctime": _seconds(node.ctime),
    }
    kind = stat.S_IFMT(node.mode)
    if not node.is_dir and node.ino in first_names:
        info.type = tarfile.LNKTYPE
        info.linkname = first_names[node.ino]
        return info
    for key, value in (node.xattrs or {}).items():
        if "=" in key:
            raise fail(errno.ENOTSUP, f"{name}: xattr {key!r}")
        info.pax_headers[_XATTR + key] = value.decode("utf-8", "surrogateescape")
    if kind == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif kind == stat.S_IFREG:
        assert node.content is not None
        info.size = node.content.size
    elif kind == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, node.target or ""
    elif kind == stat.S_IFIFO:
        info.type = tarfile.FIFOTYPE
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(node.rdev), os.minor(node.rdev)
    else:
        return None
    if not node.is_dir:
        first_names[node.ino] = name
    return info


def export_tar(namespace: Namespace, target: Target, root: str = "/") -> None:
    """Write ``root`` and everything under it to ``target`` as a pax tar archive.

    The tree is frozen (namespace lock) while it is written, and each file's content is
    copied under its inode lock, so the archive is one consistent snapshot.

    :param target: a path (``.gz``, ``.tgz``, ``.bz2``, ``.xz`` compress) or a binary
        file object open for writing (written as a stream; not closed).
    :param root: the directory to export.
    :raises OSError: ``ENOENT``/``ENOTDIR`` for ``root``; ``ENOTSUP`` for an xattr name
        a tar cannot hold; errors of writing ``target``.
    """
    with namespace.lock:
        top = namespace.lookup(root)
        if not top.is_dir:
            raise fail(errno.ENOTDIR, root)
        first_names: dict[int, str] = {}
        with _open_for_writing(target) as archive:
            for name, node in _walk(top):
                with node.lock:
                    info = _member(name, node, first_names)
                    if info is None:
                        continue
                    if info.isreg():
                        archive.addfile(info, cast(IO[bytes], _ContentReader(node)))
                    else:
                        archive.addfile(info)


# -- import ---------------------------------------------------------------------------------
class _Plan:
    """What an archive will add: its members by relative path, checked."""

    def __init__(self, archive: tarfile.TarFile, root: str) -> None:
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
            for key, value in _xattrs(member).items():
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

    def cost(self) -> tuple[int, int]:
        """``(bytes, nodes)`` of the new entries besides file data (an upper bound)."""
        nbytes = nodes = 0
        for member in [*self.members.values(), *([self.top] if self.top else [])]:
            nodes += 1
            if member.islnk():
                continue
            if member.issym():
                nbytes += byte_length(member.linkname)
            nbytes += sum(xattrs.cost(k, v) for k, v in _xattrs(member).items())
        return nbytes, nodes - (self.top is not None)


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


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    return {
        key[len(_XATTR) :]: value.encode("utf-8", "surrogateescape")
        for key, value in member.pax_headers.items()
        if key.startswith(_XATTR)
    }


def _time(member: tarfile.TarInfo, key: str) -> int:
    text = member.pax_headers.get(key)
    if text is not None:
        return _nanoseconds(text)
    return int(Decimal(str(member.mtime)).scaleb(9))


def _apply(node: Inode, member: tarfile.TarInfo, now: int) -> int:
    """Copy the member's metadata onto ``node``; returns the xattr bytes added."""
    node.mode = stat.S_IFMT(node.mode) | (member.mode & 0o7777)
    node.uid, node.gid = member.uid, member.gid
    node.mtime = _time(member, "mtime")
    node.atime = _time(member, "atime") if "atime" in member.pax_headers else node.mtime
    node.ctime = now
    added = 0
    for key, value in _xattrs(member).items():
        if node.xattrs is None:
            node.xattrs = {}
        old = node.xattrs.get(key)
        delta = xattrs.cost(key, value) - (xattrs.cost(key, old) if old is not None else 0)
        node.xattrs[key] = value
        node.extra += delta
        added += delta
    node.changed()
    return added


def _fill(node: Inode, data: IO[bytes], size: int, budget: _Budget) -> None:
    """Copy ``size`` bytes into ``node``'s content, leaving zeros as holes."""
    content = node.content
    assert content is not None
    offset = 0
    while offset < size:
        piece = data.read(min(CHUNK_SIZE - offset % CHUNK_SIZE, size - offset))
        if not piece:
            raise fail(errno.EIO, "archive ends inside a file")
        length = len(piece)
        if piece != _ZEROS[:length]:
            piece = piece.rstrip(b"\0")
            budget.reserve(content.write_cost(offset, len(piece)))
            content.write(piece, offset)
        offset += length
    content.truncate(size)


def _open_for_reading(source: Target) -> tuple[tarfile.TarFile, IO[bytes] | None]:
    if isinstance(source, str | os.PathLike):
        archive = tarfile.open(  # noqa: SIM115 - closed by the caller
            os.fspath(source), "r:*", encoding="utf-8", errors="surrogateescape"
        )
        return archive, None
    spool: IO[bytes] | None = None
    fileobj: IO[bytes] = source
    if not (hasattr(source, "seekable") and source.seekable()):
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller
        shutil.copyfileobj(source, spool)
        spool.seek(0)
        fileobj = spool
    archive = tarfile.open(  # noqa: SIM115 - closed by the caller
        fileobj=fileobj, mode="r:*", encoding="utf-8", errors="surrogateescape"
    )
    return archive, spool


def import_tar(namespace: Namespace, source: Target, root: str = "/") -> None:
    """Add the tree in the tar archive ``source`` under the directory ``root``.

    :param source: a path (compression detected) or a binary file object open for
        reading (one that cannot seek is first copied to a temporary file).
    :param root: an existing directory of the store; the archive's ``.`` member sets
        its metadata, the other members land below it, directories merging with ones
        that exist.
    :raises OSError: ``ENOSPC`` when the archive does not fit the quota or the node
        cap; ``EEXIST`` when a non-directory is in the way; ``ENOTDIR``; ``EINVAL``
        for a member name with ``..``; ``ENAMETOOLONG``; ``E2BIG``/``ERANGE``/
        ``ENOTSUP`` for bad xattrs; :class:`tarfile.TarError` for a damaged archive.
        On any error the store is left as it was.
    """
    archive, spool = _open_for_reading(source)
    try:
        with archive:
            _import(namespace, archive, root)
    finally:
        if spool is not None:
            spool.close()


def _import(namespace: Namespace, archive: tarfile.TarFile, root: str) -> None:
    plan = _Plan(archive, root)
    with namespace.lock:
        top = namespace.lookup(root)
        if not top.is_dir:
            raise fail(errno.ENOTDIR, root)
        existing, implied = _conflicts(top, plan)
    nbytes, nodes = plan.cost()
    nodes += len(implied) - sum(1 for path in existing if path in plan.members)
    budget = _Budget(namespace.quota)
    try:
        budget.reserve(nbytes, nodes)
        used = _build_and_attach(namespace, archive, plan, top, existing, implied, budget)
    except BaseException:
        namespace.quota.release(budget.nbytes, budget.nodes)
        raise
    namespace.quota.release(budget.nbytes - used)


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
        built[path] = namespace.new_inode(stat.S_IFDIR | 0o755, top.uid, top.gid, now)
    for path, member in plan.members.items():
        if path in existing:
            continue
        if member.islnk():
            source = plan.link_source(member)
            assert source is not None
            node = built[source]
            node.nlink += 1
            built[path] = node
            continue
        node = namespace.new_inode(_kind(member), member.uid, member.gid, now)
        if member.isreg():
            data = archive.extractfile(member)
            assert data is not None
            _fill(node, data, member.size, budget)
            used += node.content.allocated if node.content is not None else 0
        elif member.issym():
            node.target = member.linkname
            node.extra = byte_length(member.linkname)
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
