"""The dispatcher: friendly returns, defaults for missing operations, errors -> errno.

The store behind the routes and the content shapes have their own ``test_dispatch_*.py``
files.
"""

import errno
import logging
import os
import stat

import pytest

from defuse2 import Attributes, FileSystem, Resource, attributes
from defuse2.dispatch import Dispatcher
from dispatch_app import four_files
from errnos import errno_of


@pytest.fixture
def fs() -> FileSystem:
    return four_files()


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


def test_attributes_builders() -> None:
    assert attributes.symlink("target").size == 6
    assert attributes.directory().is_dir
    changed = attributes.file(size=1).with_changes(size=2)
    assert isinstance(changed, Attributes) and changed.size == 2


def test_operations_lists_what_can_be_registered(dispatcher: Dispatcher) -> None:
    assert {"getattr", "read", "write", "readdir", "rename"} <= dispatcher.operations


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
