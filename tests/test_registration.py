"""Registration: setup mistakes fail at once, with a message that names the fix."""

import pytest

from defuse2 import DefuseError, FileSystem, Resource


@pytest.fixture
def fs() -> FileSystem:
    return FileSystem(quota="1 MiB")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("relative/<name>", "must start with '/'"),
        ("/dir/", "trailing slashes"),
        ("/a//b", "empty segment"),
        ("/a/../b", "'..' segment"),
        ("/<nope:name>", "converters: any, default, float, int, path, string, uuid"),
        ("/<int(:x>", "not a valid rule"),
    ],
)
def test_bad_rules_are_refused(fs: FileSystem, rule: str, message: str) -> None:
    with pytest.raises(DefuseError, match=message.replace("(", r"\(")):

        @fs.route(rule)
        class Thing(Resource):
            pass


def test_a_path_has_one_resource(fs: FileSystem) -> None:
    @fs.route("/same")
    class First(Resource):
        pass

    with pytest.raises(DefuseError, match="already served by First"):

        @fs.route("/same")
        class Second(Resource):
            pass


def test_unknown_argument_lists_the_available_names(fs: FileSystem) -> None:
    with pytest.raises(DefuseError) as error:

        @fs.route("/<name>.<ext>")
        class Files(Resource):
            def read(self, size, offset, filename, ext):
                return b""

    text = str(error.value)
    assert "'filename'" in text
    assert "available names: ctx, ext, fh, name, offset, path, size" in text


def test_the_seed_signature_works_as_written(fs: FileSystem) -> None:
    @fs.route("/<filename>.<ext>")
    class Files(Resource):
        def read(self, size, offset, filename, ext):
            return (filename * 4).encode()[offset : offset + size]

    assert fs.dispatcher().read("/test1.txt", 100, 0, 0) == b"test1test1test1test1"


def test_variable_colliding_with_an_argument_is_refused(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match="variable 'offset' clashes with the argument"):

        @fs.route("/<offset>.bin")
        class Blob(Resource):
            def read(self, size, offset):
                return b""


@pytest.mark.parametrize("name", ["path", "ctx"])
def test_reserved_variable_names_are_refused(fs: FileSystem, name: str) -> None:
    with pytest.raises(DefuseError, match=f"variable named '{name}', which is reserved"):

        @fs.route(f"/x/<{name}>")
        class Thing(Resource):
            def getattr(self):
                return {}


def test_positional_catch_all_is_refused(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match="passes arguments by name"):

        @fs.route("/x")
        class Thing(Resource):
            def read(self, *args):
                return b""


def test_only_resource_classes_can_be_routed(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match=r"use fs.file\('/f'\) for a function"):

        @fs.route("/f")
        def f():
            return "x"

    with pytest.raises(DefuseError, match="subclass of defuse2.Resource"):

        @fs.route("/g")
        class NotAResource:
            pass


def test_file_decorates_functions_only(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match=r"for a class use fs.route\('/f'\)"):

        @fs.file("/f")
        class Thing(Resource):
            pass


def test_resource_needing_constructor_arguments_is_refused(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match="constructible without arguments"):

        @fs.route("/x")
        class Thing(Resource):
            def __init__(self, table):
                self.table = table


def test_optional_parameters_may_name_what_a_route_lacks(fs: FileSystem) -> None:
    @fs.route("/a/<name>")
    @fs.route("/b")
    class Thing(Resource):
        def read(self, size, offset, name="default"):
            return name.encode()

    dispatcher = fs.dispatcher()
    assert dispatcher.read("/a/given", 100, 0, 0) == b"given"
    assert dispatcher.read("/b", 100, 0, 0) == b"default"


def test_decorators_return_the_class_unchanged(fs: FileSystem) -> None:
    class Thing(Resource):
        pass

    assert fs.route("/x")(Thing) is Thing


def test_store_options_go_to_the_default_store_only() -> None:
    with pytest.raises(DefuseError, match="give them to your own store"):
        FileSystem(quota="1 MiB", store=FileSystem().store)
