"""The dispatcher's content shapes: ``ContentFile`` and ``Directory`` resources, content
snapshotted per open and computed once per stat."""

import errno
import os

import pytest

from defuse2 import ContentFile, Context, Directory, FileSystem
from defuse2.dispatch import Dispatcher
from dispatch_app import four_files
from errnos import errno_of


@pytest.fixture
def fs() -> FileSystem:
    return four_files()


@pytest.fixture
def dispatcher(fs: FileSystem) -> Dispatcher:
    return fs.dispatcher()


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
