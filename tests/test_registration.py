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


# -- the route map is built once, when the filesystem first serves ---------------------------


def nested_routes(fs: FileSystem, first: int, count: int) -> None:
    """Register ``count`` routes ``/g{i}/<user>/items/<int:item>.json``, each implying three
    directories, each with a resource class of its own."""
    for index in range(first, first + count):

        @fs.route(f"/g{index}/<user>/items/<int:item>.json")
        class Item(Resource):
            def read(self, size, offset, user, item):
                return b""


def test_registering_builds_nothing_until_the_filesystem_serves(
    fs: FileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from defuse2 import routing

    built: list[str] = []
    build = routing.invokers_for
    monkeypatch.setattr(routing, "invokers_for", lambda r: built.append(r.rule) or build(r))
    nested_routes(fs, 0, 30)
    assert built == []  # registering only collects
    client = fs.test_client()
    assert client.read_bytes("/g3/ann/items/7.json") == b""
    # each route once; the implied directories (/g3, /g3/<user>, /g3/<user>/items) share
    # one resource: once for each set of variables, () and ("user",)
    assert len(built) == 30 + 2
    assert client.listdir("/g3/ann") == ["items"]
    nested_routes(fs, 30, 10)  # not serving yet: routes may still change
    assert len(built) == 32
    assert client.read_bytes("/g35/bob/items/1.json") == b""  # rebuilt on first use
    assert len(built) == 32 + 10 + 2  # only the new routes and their directories
    assert len(fs.routes()) == 40 * 4


def test_routes_cannot_change_while_mounted(fs: FileSystem) -> None:
    with fs._mounted_state():
        with pytest.raises(DefuseError, match="while the filesystem is mounted"):
            fs.add_route("/late", Resource)
        group = fs.group("/api")
        with pytest.raises(DefuseError, match=r"cannot add route '/api/late'"):
            group.add_route("/late", Resource)
    fs.add_route("/late", Resource)  # unmounted: fine again
    assert fs.match("/late") is not None


# -- add_route and route options ------------------------------------------------------------


def test_add_route_takes_a_class_or_an_instance(fs: FileSystem) -> None:
    class Table(Resource):
        def __init__(self, name: str = "default") -> None:
            self.name = name

        def read(self, size, offset):
            return self.name.encode()

    fs.add_route("/users", Table("users"))
    fs.add_route("/plain", Table)
    dispatcher = fs.dispatcher()
    assert dispatcher.read("/users", 100, 0, 0) == b"users"
    assert dispatcher.read("/plain", 100, 0, 0) == b"default"
    with pytest.raises(DefuseError, match="already serves another filesystem"):
        FileSystem().add_route("/users", fs.url_map.match("/users")[0].resource)  # type: ignore[index]


def test_route_options(fs: FileSystem) -> None:
    @fs.route("/clock", dynamic=True)
    @fs.route("/still")
    class Clock(Resource):
        def read(self, size, offset):
            return b"12:00\n"

    dispatcher = fs.dispatcher()
    assert dispatcher.is_dynamic("/clock") and not dispatcher.is_dynamic("/still")
    with pytest.raises(
        DefuseError, match="unknown option 'timeot'; route options: blocking, dynamic, timeout"
    ):
        fs.add_route("/x", Clock, timeot=3)
    with pytest.raises(DefuseError, match="option dynamic='yes' must be bool"):
        fs.add_route("/y", Clock, dynamic="yes")


def test_add_route_refuses_what_is_not_a_resource(fs: FileSystem) -> None:
    with pytest.raises(DefuseError, match=r"not 42"):
        fs.add_route("/x", 42)  # type: ignore[arg-type]


def test_groups_nest(fs: FileSystem) -> None:
    from defuse2 import Group

    outer, inner = Group("/outer"), Group("/inner")

    @inner.file("/leaf")
    def leaf():
        return "leaf\n"

    inner.register_on(outer)
    fs.register(outer)
    assert fs.test_client().read_text("/outer/inner/leaf") == "leaf\n"
