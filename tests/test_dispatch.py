"""The dispatcher: friendly returns, defaults for missing operations, errors -> errno."""

import errno
import logging
import os
import stat

import pytest

from defuse2 import (
    Attributes,
    ContentFile,
    Context,
    Directory,
    FileSystem,
    Resource,
    StoreResource,
    attributes,
)
from defuse2.dispatch import Dispatcher
from errnos import errno_of


@pytest.fixture
def fs() -> FileSystem:
    filesystem = FileSystem(quota="1 MiB")

    @filesystem.route("/")
    class Root(Resource):
        def readdir(self):
            return [f"test{i}.txt" for i in range(4)]

    @filesystem.route("/<name>.<ext>")
    class Files(Resource):
        def getattr(self, name, ext):
            return attributes.file(size=len(name) * 4, mode=0o444)

        def read(self, size, offset, name, ext):
            return (name * 4).encode()[offset : offset + size]

    return filesystem


@pytest.fixture
def dispatcher(fs: FileSystem) -> Dispatcher:
    return fs.dispatcher()


def test_hello(dispatcher: Dispatcher) -> None:
    assert dispatcher.readdir("/") == [
        ".",
        "..",
        "test0.txt",
        "test1.txt",
        "test2.txt",
        "test3.txt",
    ]
    st = dispatcher.getattr("/test2.txt")
    assert st["st_size"] == 20
    assert st["st_mode"] == stat.S_IFREG | 0o444
    assert st["st_uid"] == os.getuid()
    assert dispatcher.read("/test2.txt", 4096, 0, 0) == b"test2test2test2test2"
    assert dispatcher.read("/test2.txt", 5, 15, 0) == b"test2"


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("write", ("/test0.txt", b"x", 0, 0)),
        ("truncate", ("/test0.txt", 0)),
        ("unlink", ("/test0.txt",)),
        ("chmod", ("/test0.txt", 0o644)),
        ("chown", ("/test0.txt", 1, 1)),
        ("utimens", ("/test0.txt", None)),
        ("create", ("/test9.txt", 0o644, os.O_WRONLY)),
        ("mkdir", ("/new.dir", 0o755)),
        ("symlink", ("/link.txt", "test0.txt")),
        ("rename", ("/test0.txt", "/test9.txt")),
        ("setxattr", ("/test0.txt", "user.a", b"1", 0)),
        ("removexattr", ("/test0.txt", "user.a")),
        ("open", ("/test0.txt", os.O_WRONLY)),
        ("open", ("/test0.txt", os.O_RDWR)),
    ],
)
def test_changes_to_a_read_only_resource_are_erofs(
    dispatcher: Dispatcher, op: str, args: tuple
) -> None:
    assert errno_of(getattr(dispatcher, op), *args) == errno.EROFS


@pytest.mark.parametrize(
    ("op", "args", "code"),
    [
        ("readlink", ("/test0.txt",), errno.EINVAL),
        ("getxattr", ("/test0.txt", "user.a"), errno.ENODATA),
        ("readdir", ("/test0.txt",), errno.ENOTDIR),
        ("opendir", ("/test0.txt",), errno.ENOTDIR),
    ],
)
def test_operations_without_meaning_for_a_resource(
    dispatcher: Dispatcher, op: str, args: tuple, code: int
) -> None:
    assert errno_of(getattr(dispatcher, op), *args) == code


def test_read_only_open_and_listxattr_have_defaults(dispatcher: Dispatcher) -> None:
    assert dispatcher.open("/test0.txt", os.O_RDONLY) == 0
    assert dispatcher.listxattr("/test0.txt") == []
    dispatcher.release("/test0.txt", 0)


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


def test_a_failing_method_is_eio_and_logged(
    fs: FileSystem, caplog: pytest.LogCaptureFixture
) -> None:
    @fs.route("/boom")
    class Boom(Resource):
        def read(self, size, offset):
            raise RuntimeError("kaboom")

    dispatcher = fs.dispatcher()
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert errno_of(dispatcher.read, "/boom", 10, 0, 0) == errno.EIO
    record = caplog.records[-1]
    assert "read /boom (route /boom (Boom)) raised RuntimeError" in record.getMessage()
    assert record.exc_info is not None and "kaboom" in str(record.exc_info[1])
    assert dispatcher.read("/test1.txt", 100, 0, 0) == b"test1test1test1test1"


def test_an_oserror_from_a_method_keeps_its_errno(fs: FileSystem) -> None:
    @fs.route("/private")
    class Private(Resource):
        def getattr(self):
            raise PermissionError(errno.EACCES, "no")

    assert errno_of(fs.dispatcher().getattr, "/private") == errno.EACCES


@pytest.mark.parametrize("value", [42, None, ["list"]])
def test_a_wrong_return_type_is_eio(
    fs: FileSystem, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    @fs.route("/odd")
    class Odd(Resource):
        def getattr(self):
            return attributes.file(size=1)

        def read(self, size, offset):
            return value

    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert errno_of(fs.dispatcher().read, "/odd", 10, 0, 0) == errno.EIO
    assert "must return bytes or str" in caplog.text


def test_friendly_returns(fs: FileSystem) -> None:
    written = []

    @fs.route("/text")
    class Text(Resource):
        def getattr(self):
            return {"mode": stat.S_IFREG | 0o644, "size": 5}

        def read(self, size, offset):
            return "héllo"[offset:]

        def write(self, data, offset):
            written.append((data, offset))

    @fs.route("/listing")
    class Listing(Resource):
        def readdir(self):
            return ["a", ("b", attributes.file()), "."]

    dispatcher = fs.dispatcher()
    assert dispatcher.getattr("/text")["st_size"] == 5
    assert dispatcher.read("/text", 100, 0, 0) == "héllo".encode()
    assert dispatcher.write("/text", b"abc", 3, 0) == 3
    assert written == [(b"abc", 3)]
    assert dispatcher.readdir("/listing") == [".", "..", "a", "b"]


def test_getattr_accepts_a_stat_mapping(fs: FileSystem) -> None:
    @fs.route("/raw")
    class Raw(Resource):
        def getattr(self):
            return {"st_mode": stat.S_IFREG | 0o600, "st_size": 3, "st_uid": 1234}

    st = fs.dispatcher().getattr("/raw")
    assert (st["st_mode"], st["st_size"], st["st_uid"]) == (stat.S_IFREG | 0o600, 3, 1234)
    assert st["st_gid"] == os.getgid()


def test_derived_attributes(fs: FileSystem) -> None:
    @fs.route("/only-read")
    class OnlyRead(Resource):
        def read(self, size, offset):
            return b"12345"[offset : offset + size]

    @fs.route("/only-list")
    class OnlyList(Resource):
        def readdir(self):
            return ["x"]

    dispatcher = fs.dispatcher()
    file_stat = dispatcher.getattr("/only-read")
    assert file_stat["st_mode"] == stat.S_IFREG | 0o444
    assert file_stat["st_size"] == 5
    assert dispatcher.getattr("/only-list")["st_mode"] == stat.S_IFDIR | 0o755


def test_arguments_are_injected_by_name(fs: FileSystem) -> None:
    seen = {}

    @fs.route("/users/<user>/<int:number>")
    class Item(Resource):
        def read(self, number, offset, path, ctx, user, size):
            seen.update(number=number, offset=offset, path=path, ctx=ctx, user=user, size=size)
            return b""

    fs.dispatcher().read("/users/ann/7", 10, 3, 0)
    assert seen["number"] == 7 and seen["user"] == "ann"
    assert (seen["offset"], seen["size"], seen["path"]) == (3, 10, "/users/ann/7")
    assert seen["ctx"].uid == os.getuid() and seen["ctx"].pid == os.getpid()


def test_defaults_and_keyword_only_parameters_are_kept(fs: FileSystem) -> None:
    @fs.route("/kw/<name>")
    class Item(Resource):
        def read(self, size, unknown="kept", offset=0, *, name, fh=None):
            return f"{size} {unknown} {offset} {name} {fh}".encode()

    assert fs.dispatcher().read("/kw/ann", 100, 2, 5) == b"100 kept 2 ann 5"


def test_content_file_and_directory_shapes(fs: FileSystem) -> None:
    @fs.route("/people")
    class People(Directory):
        def entries(self):
            return ["ann", "bob"]

    @fs.route("/people/<person>")
    class Person(ContentFile):
        def content(self, person):
            return f"I am {person}\n"

    dispatcher = fs.dispatcher()
    assert dispatcher.readdir("/people") == [".", "..", "ann", "bob"]
    assert dispatcher.getattr("/people/ann")["st_size"] == len("I am ann\n")
    fh = dispatcher.open("/people/ann", os.O_RDONLY)
    assert dispatcher.read("/people/ann", 4, 5, fh) == b"ann\n"
    dispatcher.release("/people/ann", fh)
    assert errno_of(dispatcher.open, "/people/ann", os.O_WRONLY) == errno.EROFS


def test_content_is_snapshotted_per_open(fs: FileSystem) -> None:
    versions = iter([b"first version", b"second"])

    @fs.route("/changing")
    class Changing(ContentFile):
        dynamic = True

        def content(self):
            return next(versions)

    dispatcher = fs.dispatcher()
    fh = dispatcher.open("/changing", os.O_RDONLY)
    assert dispatcher.read("/changing", 5, 0, fh) == b"first"
    assert dispatcher.read("/changing", 100, 6, fh) == b"version"
    assert dispatcher.is_dynamic("/changing") and not dispatcher.is_dynamic("/test0.txt")
    assert dispatcher.has_dynamic_routes


def test_without_dynamic_routes_nothing_is_dynamic(dispatcher: Dispatcher) -> None:
    assert not dispatcher.has_dynamic_routes
    assert not dispatcher.is_dynamic("/test0.txt") and not dispatcher.is_dynamic("/stored")


def test_function_shorthands(fs: FileSystem) -> None:
    @fs.file("/motd")
    def motd():
        return "Welcome\n"

    @fs.directory("/colours")
    def colours():
        return ["red", "blue"]

    dispatcher = fs.dispatcher()
    assert dispatcher.read("/motd", 100, 0, 0) == b"Welcome\n"
    assert dispatcher.readdir("/colours") == [".", "..", "red", "blue"]
    assert "motd" in dispatcher.readdir("/") and "colours" in dispatcher.readdir("/")


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


def test_attributes_builders() -> None:
    assert attributes.symlink("target").size == 6
    assert attributes.directory().is_dir
    changed = attributes.file(size=1).with_changes(size=2)
    assert isinstance(changed, Attributes) and changed.size == 2


def test_operations_lists_what_can_be_registered(dispatcher: Dispatcher) -> None:
    assert {"getattr", "read", "write", "readdir", "rename"} <= dispatcher.operations


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


def test_write_takes_any_bytes_like_object_and_keeps_a_copy(fs: FileSystem) -> None:
    """Under a mount ``data`` is a memoryview over libfuse's buffer, valid only during
    the call: the store copies it, and a resource always receives ``bytes``."""
    import array
    import ctypes

    received = []

    @fs.route("/routed")
    class Routed(Resource):
        def write(self, data, offset):
            received.append(data)

    dispatcher = fs.dispatcher()
    fh = dispatcher.create("/stored", 0o644, os.O_RDWR)
    buffer = bytearray(b"hello")
    with memoryview(buffer) as view:
        assert dispatcher.write("/stored", view, 0, fh) == 5
        assert dispatcher.write("/routed", view, 0, 0) == 5
    buffer[:] = b"XXXXX"
    buffer.extend(b"!")  # no view of it is left behind
    assert received == [b"hello"]
    assert type(received[0]) is bytes

    c_buffer = ctypes.create_string_buffer(b" world", 6)  # format "<c", as ctypes gives
    assert dispatcher.write("/stored", memoryview(c_buffer), 5, fh) == 6
    wide = memoryview(array.array("I", [0x21212121]))  # one item of four bytes
    assert dispatcher.write("/stored", wide, 11, fh) == 4
    assert dispatcher.write("/routed", wide, 0, 0) == 4
    assert received[-1] == b"!!!!"
    assert dispatcher.read("/stored", 100, 0, fh) == b"hello world!!!!"

    too_big = memoryview(bytearray(2 << 20))  # the fixture's quota is 1 MiB
    assert errno_of(dispatcher.write, "/stored", too_big, 0, fh) == errno.ENOSPC
    assert dispatcher.read("/stored", 100, 0, fh) == b"hello world!!!!"
    dispatcher.release("/stored", fh)


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


def test_open_with_o_trunc_truncates_through_the_resource(fs: FileSystem) -> None:
    files = {"a": bytearray(b"hi there\n")}

    @fs.route("/<name>.txt")
    class Text(Resource):
        def getattr(self, name):
            return attributes.file(size=len(files[name]), mode=0o644)

        def read(self, size, offset, name):
            return bytes(files[name][offset : offset + size])

        def write(self, data, offset, name):
            files[name][offset : offset + len(data)] = data

        def truncate(self, length, name):
            del files[name][length:]

    @fs.route("/fixed/<name>")
    class Fixed(Resource):  # writes in place, cannot truncate
        def write(self, data, offset, name):
            return None

    client = fs.test_client()
    client.write_bytes("/a.txt", b"ab\n")  # open(O_TRUNC), as libfuse 3 sends it
    assert client.read_bytes("/a.txt") == b"ab\n"  # no stale tail
    assert files["a"] == b"ab\n"
    assert errno_of(fs.dispatcher().open, "/fixed/x", os.O_WRONLY | os.O_TRUNC) == errno.EROFS
    assert fs.dispatcher().open("/fixed/x", os.O_WRONLY) == 0


def test_kept_metadata_of_a_writable_resource(fs: FileSystem) -> None:
    @fs.route("/w")
    class Writable(Resource):
        def getattr(self):
            return attributes.file(size=0, mode=0o644)

        def write(self, data, offset):
            return None

    client = fs.test_client()
    before = client.stat("/w")
    client.utime("/w", ns=(10**18, 10**18 + 1))
    client.chmod("/w", 0o600)
    st = client.stat("/w")
    assert (st.st_atime_ns, st.st_mtime_ns) == (10**18, 10**18 + 1)
    assert st.st_mode == stat.S_IFREG | 0o600
    assert st.st_ctime_ns > before.st_ctime_ns
    fd = client.open("/w", os.O_WRONLY)
    client.write(fd, b"x")  # a write moves a kept mtime
    client.close(fd)
    assert client.stat("/w").st_mtime_ns > 10**18 + 1
    assert errno_of(client.setxattr, "/w", "user.a", b"1") == errno.ENOTSUP
    assert errno_of(client.utime, "/test0.txt", None) == errno.EROFS  # read-only: refused


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


def test_stat_of_a_content_file_computes_its_content_once(fs: FileSystem) -> None:
    computed: list[str] = []

    @fs.route("/still/<name>")
    class Still(ContentFile):
        def content(self, name):
            computed.append(name)
            return name * 3

    @fs.route("/live/<name>", dynamic=True)
    class Live(ContentFile):
        def content(self, name):
            computed.append(name)
            return name

    client = fs.test_client()
    for _ in range(3):
        assert client.stat("/still/ab").st_size == 6
        assert client.stat("/live/xyz").st_size == 3
    assert computed.count("ab") == 1  # remembered: the content does not change by itself
    assert computed.count("xyz") == 3  # dynamic: computed for every stat
    assert client.read_bytes("/still/ab") == b"ababab"  # and once per open
    assert computed.count("ab") == 2


def test_a_shape_without_its_method_is_refused_at_registration(fs: FileSystem) -> None:
    from defuse2 import DefuseError, WritableFile

    with pytest.raises(DefuseError, match=r"Empty must define content\(\)"):

        @fs.route("/empty")
        class Empty(ContentFile):
            pass

    with pytest.raises(DefuseError, match=r"Unsaved must define save\(\)"):

        @fs.route("/unsaved")
        class Unsaved(WritableFile):
            def content(self):
                return ""


def test_content_that_depends_on_the_caller_is_computed_for_each_stat(fs: FileSystem) -> None:
    @fs.route("/whoami")
    class WhoAmI(ContentFile):
        def content(self, ctx):
            return f"{ctx.pid}\n"

    fs.test_client()  # builds the route map
    asked = [Context(0, 0, 7), Context(0, 0, 12345)]
    dispatcher = fs.dispatcher(lambda: asked[0])
    assert dispatcher.getattr("/whoami")["st_size"] == 2
    asked.pop(0)
    assert dispatcher.getattr("/whoami")["st_size"] == 6  # not the first caller's size
