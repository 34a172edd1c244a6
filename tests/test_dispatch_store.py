"""The dispatcher and the store behind the routes: unrouted paths, merged listings, implied
directories, and ``StoreResource`` passing path, arguments and caller on."""

import errno
import os
import stat

import pytest

from defuse2 import ContentFile, Context, Directory, FileSystem, Resource, StoreResource, attributes
from defuse2.dispatch import Dispatcher
from dispatch_app import four_files
from errnos import errno_of


@pytest.fixture
def fs() -> FileSystem:
    return four_files()


@pytest.fixture
def dispatcher(fs: FileSystem) -> Dispatcher:
    return fs.dispatcher()


def test_unrouted_paths_go_to_the_store(dispatcher: Dispatcher) -> None:
    dispatcher.mkdir("/notes", 0o755)
    fh = dispatcher.create("/notes/a", 0o644, os.O_WRONLY)
    assert dispatcher.write("/notes/a", b"hi\n", 0, fh) == 3
    dispatcher.release("/notes/a", fh)
    fh = dispatcher.open("/notes/a", os.O_RDONLY)
    assert dispatcher.read("/notes/a", 100, 0, fh) == b"hi\n"
    dispatcher.release("/notes/a", fh)
    assert "notes" in dispatcher.readdir("/")
    assert dispatcher.readdir("/notes") == [".", "..", "a"]


def test_statfs_reports_the_store_quota(dispatcher: Dispatcher) -> None:
    figures = dispatcher.statfs("/test0.txt")
    assert figures["f_blocks"] * figures["f_frsize"] == 1 << 20


def test_listing_merges_resource_static_routes_and_store(fs: FileSystem) -> None:
    @fs.route("/docs")
    class Docs(Directory):
        def entries(self):
            return ["generated.md"]

    @fs.route("/docs/<doc>.md")
    class Generated(ContentFile):
        def content(self, doc):
            return doc

    @fs.file("/docs/static.txt")
    def static_file():
        return "s"

    dispatcher = fs.dispatcher()
    fh = dispatcher.create("/docs/mine.txt", 0o644, os.O_WRONLY)
    dispatcher.release("/docs/mine.txt", fh)
    names = dispatcher.readdir("/docs")
    assert names == [".", "..", "generated.md", "static.txt", "mine.txt"]
    for name in names[2:]:
        dispatcher.getattr(f"/docs/{name}")  # every listed name getattrs


def test_a_routed_listing_asks_the_store_without_an_exception(
    fs: FileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = fs.dispatcher()

    def refuse(*args: object) -> None:
        raise AssertionError("the store's readdir raised ENOENT for a routed listing")

    monkeypatch.setattr(dispatcher.store, "readdir", refuse)
    assert dispatcher.readdir("/")[2:] == [f"test{i}.txt" for i in range(4)]


def test_store_operations_hand_on_to_the_store_only_without_routes(fs: FileSystem) -> None:
    assert fs.dispatcher().store_operations() == {}
    plain = FileSystem(quota="1 MiB")
    dispatcher = plain.dispatcher()
    direct = dispatcher.store_operations()
    assert set(direct) == {"getattr", "read", "release", "flush", "fsync", "find_xattr"}
    fh = dispatcher.create("/f", 0o644, os.O_RDWR)
    dispatcher.write("/f", b"data", 0, fh)
    assert direct["getattr"]("/f", None) == dispatcher.getattr("/f", None)
    assert direct["read"]("/f", 10, 0, fh) == dispatcher.read("/f", 10, 0, fh) == b"data"
    assert direct["find_xattr"]("/f", "user.x") is dispatcher.find_xattr("/f", "user.x") is None
    direct["release"]("/f", fh)
    assert errno_of(dispatcher.release, "/f", fh) == errno.EBADF


def test_releasedir_after_rmdir_gives_the_directory_back(fs: FileSystem) -> None:
    dispatcher = fs.dispatcher()
    store = dispatcher.store
    nodes = store.quota.nodes
    dispatcher.mkdir("/gone", 0o755)
    fh = dispatcher.opendir("/gone")
    dispatcher.rmdir("/gone")
    dispatcher.releasedir("/gone", fh)
    assert store.quota.nodes == nodes
    assert errno_of(dispatcher.releasedir, "/gone", fh) == errno.EBADF


def test_implied_directories_hold_store_files(fs: FileSystem) -> None:
    @fs.route("/users/<user>/profile.json")
    class Profile(ContentFile):
        def content(self, user):
            return "{}"

    dispatcher = fs.dispatcher()
    assert stat.S_ISDIR(dispatcher.getattr("/users/ann")["st_mode"])
    dispatcher.mkdir("/users/ann/notes", 0o755)
    assert dispatcher.readdir("/users/ann") == [".", "..", "profile.json", "notes"]


def test_rename_between_resource_and_store_is_exdev(fs: FileSystem) -> None:
    dispatcher = fs.dispatcher()
    fh = dispatcher.create("/plain", 0o644, os.O_WRONLY)
    dispatcher.release("/plain", fh)
    assert errno_of(dispatcher.rename, "/plain", "/test0.txt") == errno.EXDEV
    assert errno_of(dispatcher.link, "/plain2", "/test0.txt") == errno.EXDEV


def test_store_resource_delegates_and_can_validate(fs: FileSystem) -> None:
    import json

    @fs.route("/<name>.json")
    class Json(StoreResource):
        def write(self, path, data, offset, fh, ctx):
            json.loads(data)
            return super().write(path, data, offset, fh, ctx)

    dispatcher = fs.dispatcher()
    fh = dispatcher.create("/a.json", 0o644, os.O_WRONLY)
    assert dispatcher.write("/a.json", b'{"ok": 1}', 0, fh) == 9
    assert errno_of(dispatcher.write, "/a.json", b"not json", 0, fh) == errno.EIO
    dispatcher.release("/a.json", fh)
    assert dispatcher.getattr("/a.json")["st_size"] == 9


def test_a_store_resource_under_an_implied_directory_can_create(fs: FileSystem) -> None:
    @fs.route("/data/<stem>.csv")
    class Csv(StoreResource):
        pass

    dispatcher = fs.dispatcher()
    assert stat.S_IMODE(dispatcher.getattr("/data")["st_mode"]) == 0o755
    fh = dispatcher.create("/data/a.csv", 0o644, os.O_WRONLY)
    dispatcher.write("/data/a.csv", b"x,y\n", 0, fh)
    dispatcher.release("/data/a.csv", fh)
    assert dispatcher.readdir("/data") == [".", "..", "a.csv"]
    assert dispatcher.getattr("/data/a.csv")["st_size"] == 4


def test_find_xattr_answers_none_where_getxattr_says_enodata(fs: FileSystem) -> None:
    @fs.route("/tagged")
    class Tagged(Resource):
        def getattr(self):
            return attributes.file()

        def getxattr(self, name):
            if name != "user.tag":
                raise OSError(errno.ENODATA, "no such attribute")
            return "yes"

    dispatcher = fs.dispatcher()
    dispatcher.release("/stored", dispatcher.create("/stored", 0o644, os.O_WRONLY))
    dispatcher.setxattr("/stored", "user.colour", b"blue", 0)
    dispatcher.symlink("/link", "/stored")
    assert dispatcher.find_xattr("/stored", "security.capability") is None
    assert dispatcher.find_xattr("/stored", "user.colour") == b"blue"
    assert dispatcher.find_xattr("/link", "user.colour") is None
    assert dispatcher.find_xattr("/test0.txt", "security.capability") is None  # no getxattr
    assert dispatcher.find_xattr("/tagged", "user.other") is None
    assert dispatcher.find_xattr("/tagged", "user.tag") == b"yes"
    assert errno_of(dispatcher.find_xattr, "/missing", "user.colour") == errno.ENOENT
    assert errno_of(dispatcher.find_xattr, "/stored", "system.posix_acl") == errno.ENOTSUP
    assert errno_of(dispatcher.getxattr, "/stored", "security.capability") == errno.ENODATA


def test_a_store_write_asks_who_writes_only_for_setuid_files(fs: FileSystem) -> None:
    """A write by anyone but root clears setuid/setgid; only then does it matter who
    writes, so only then is the (costly, under a mount) context read."""
    from defuse2.store.base import Context

    asked = []

    def alice() -> Context:
        asked.append(1)
        return Context(1000, 1000, 1)

    fs.store.mkdir("/shared", 0o777)
    dispatcher = fs.dispatcher(context=alice)
    fh = dispatcher.create("/shared/plain", 0o644, os.O_WRONLY)
    before = len(asked)
    assert dispatcher.write("/shared/plain", b"data", 0, fh) == 4
    assert len(asked) == before
    dispatcher.chmod("/shared/plain", 0o4755)
    assert dispatcher.write("/shared/plain", b"more", 4, fh) == 4
    assert len(asked) > before
    assert stat.S_IMODE(dispatcher.getattr("/shared/plain")["st_mode"]) == 0o755
    dispatcher.release("/shared/plain", fh)


def test_store_resource_methods_all_take_path_the_arguments_and_ctx() -> None:
    import inspect

    from defuse2.operations import OPERATIONS

    for name, op in OPERATIONS.items():
        parameters = inspect.signature(getattr(StoreResource, name)).parameters
        names = list(parameters)[1:]
        first = [] if op.routed_by != "path" else ["path"]
        assert names == [*first, *op.argument_names, "ctx"], name
        assert parameters["ctx"].default is None, name


def test_store_resource_overrides_pass_ctx_on_everywhere(fs: FileSystem) -> None:
    seen: list[str] = []

    @fs.route("/box")
    @fs.route("/box/<name>")
    class Box(StoreResource):
        def readdir(self, path, fh=None, ctx=None):
            seen.append(f"readdir by {ctx.uid}")
            return super().readdir(path, fh, ctx)

        def getattr(self, path, fh=None, ctx=None):
            return super().getattr(path, fh, ctx)

        def read(self, path, size, offset, fh, ctx=None):
            return super().read(path, size, offset, fh, ctx)

        def write(self, path, data, offset, fh, ctx=None):
            return super().write(path, data, offset, fh, ctx)

        def release(self, path, fh, ctx=None):
            super().release(path, fh, ctx)

    client = fs.test_client()
    client.mkdir("/box")
    client.write_bytes("/box/a", b"boxed\n")
    assert client.read_bytes("/box/a") == b"boxed\n"
    assert client.listdir("/box") == ["a"]
    assert seen == [f"readdir by {os.getuid()}"]


def test_a_store_resource_read_does_not_ask_who_reads(fs: FileSystem) -> None:
    asked: list[int] = []

    @fs.route("/plain/<name>")
    class Plain(StoreResource):
        pass

    def context() -> Context:
        asked.append(1)
        return Context.current()

    dispatcher = fs.dispatcher(context)
    fh = dispatcher.create("/plain/a", 0o100644, os.O_RDWR)
    dispatcher.write("/plain/a", b"x", 0, fh)
    asked.clear()
    for _ in range(3):
        dispatcher.getattr("/plain/a")
        dispatcher.read("/plain/a", 10, 0, fh)
    assert asked == []  # ctx is for changes; the store needs none to read
