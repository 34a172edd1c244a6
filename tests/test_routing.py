"""Routing: werkzeug rules matched against file paths, implied directories, path_for."""

import uuid

import pytest

from defuse2 import ContentFile, DefuseError, Directory, FileSystem, Group, Resource, attributes


@pytest.fixture
def fs() -> FileSystem:
    return FileSystem(quota="1 MiB")


def test_variables_are_parsed_by_the_rule(fs: FileSystem) -> None:
    @fs.route("/<name>.<ext>")
    class Files(Resource):
        def getattr(self, name, ext):
            return attributes.file()

    match = fs.match("/report.final.txt")
    assert match is not None
    assert match.rule == "/<name>.<ext>"
    assert match.resource == "Files"
    assert match.variables == {"name": "report.final", "ext": "txt"}


@pytest.mark.parametrize(
    ("rule", "path", "variables"),
    [
        ("/n/<int:number>", "/n/42", {"number": 42}),
        ("/p/<path:rest>", "/p/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("/k/<any(red, blue):colour>", "/k/blue", {"colour": "blue"}),
        ("/f/<float:x>", "/f/1.5", {"x": 1.5}),
        (
            "/u/<uuid:id>",
            "/u/12345678-1234-5678-1234-567812345678",
            {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
        ),
        ("/s/<name>", "/s/100% sure?", {"name": "100% sure?"}),
        ("/s/<name>", "/s/caf\udce9", {"name": "caf\udce9"}),
    ],
)
def test_werkzeug_converters(fs: FileSystem, rule: str, path: str, variables: dict) -> None:
    @fs.route(rule)
    class Thing(Resource):
        def getattr(self):
            return attributes.file()

    match = fs.match(path)
    assert match is not None and match.variables == variables


@pytest.mark.parametrize("path", ["/n/abc", "/k/green", "/s/a/b", "/s", "/unrouted"])
def test_paths_no_rule_claims_go_to_the_store(fs: FileSystem, path: str) -> None:
    for rule in ("/n/<int:number>", "/k/<any(red, blue):colour>", "/s/<name>"):
        fs.route(rule)(type("R" + str(abs(hash(rule))), (Resource,), {}))
    match = fs.match(path)
    assert match is None or match.resource == "ImpliedDirectory"


def test_static_rule_outweighs_variable_rule(fs: FileSystem) -> None:
    @fs.route("/<name>")
    class Any_(Resource):
        pass

    @fs.route("/motd")
    class Motd(Resource):
        pass

    assert fs.match("/motd").resource == "Motd"  # type: ignore[union-attr]
    assert fs.match("/other").resource == "Any_"  # type: ignore[union-attr]


def test_trailing_slash_never_redirects(fs: FileSystem) -> None:
    @fs.route("/dir")
    class Dir(Directory):
        pass

    assert fs.match("/dir").rule == "/dir"  # type: ignore[union-attr]


def test_parent_directories_are_implied(fs: FileSystem) -> None:
    @fs.route("/users/<user>/profile.json")
    class Profile(ContentFile):
        def content(self, user):
            return user

    assert fs.match("/users").resource == "ImpliedDirectory"  # type: ignore[union-attr]
    assert fs.match("/users/alice").variables == {"user": "alice"}  # type: ignore[union-attr]
    implied = [r.rule for r in fs.routes() if r.implied]
    assert implied == ["/users", "/users/<user>"]


def test_explicit_route_replaces_an_implied_directory(fs: FileSystem) -> None:
    @fs.route("/users/<user>/profile.json")
    class Profile(ContentFile):
        def content(self, user):
            return user

    @fs.route("/users")
    class Users(Directory):
        def entries(self):
            return ["alice"]

    assert fs.match("/users").resource == "Users"  # type: ignore[union-attr]


def test_path_for_returns_real_names(fs: FileSystem) -> None:
    @fs.route("/<name>.<ext>")
    class Files(Resource):
        pass

    assert fs.path_for(Files, name="a b%20c", ext="t?t") == "/a b%20c.t?t"


def test_path_for_picks_the_rule_with_those_variables(fs: FileSystem) -> None:
    @fs.route("/by-id/<int:number>")
    @fs.route("/by-name/<name>")
    class Item(Resource):
        pass

    assert fs.path_for(Item, number=7) == "/by-id/7"
    assert fs.path_for(Item, name="seven") == "/by-name/seven"
    with pytest.raises(DefuseError, match="takes exactly"):
        fs.path_for(Item, colour="red")


def test_path_for_refuses_values_the_rule_cannot_match(fs: FileSystem) -> None:
    @fs.route("/s/<name>")
    class Item(Resource):
        pass

    with pytest.raises((DefuseError, ValueError)):
        fs.path_for(Item, name="a/b")


def test_path_for_a_function_file(fs: FileSystem) -> None:
    @fs.file("/motd")
    def motd():
        return "hi"

    assert fs.path_for(motd) == "/motd"


def test_groups_mount_routes_under_a_prefix(fs: FileSystem) -> None:
    api = Group()

    @api.route("/users/<user>")
    class User(ContentFile):
        def content(self, user):
            return user

    fs.register(api, prefix="/api/v1")

    @api.file("/version")
    def version():
        return "1"

    assert fs.match("/api/v1/users/bob").variables == {"user": "bob"}  # type: ignore[union-attr]
    assert fs.match("/api/v1/version").resource == "version"  # type: ignore[union-attr]
    assert fs.match("/users/bob") is None
    assert fs.path_for(User, user="bob") == "/api/v1/users/bob"


def test_fs_group_shorthand(fs: FileSystem) -> None:
    admin = fs.group("/admin")

    @admin.route("/")
    class AdminRoot(Directory):
        pass

    assert fs.match("/admin").resource == "AdminRoot"  # type: ignore[union-attr]


def test_custom_converters() -> None:
    from werkzeug.routing import BaseConverter

    class Hex(BaseConverter):
        regex = "[0-9a-f]+"

        def to_python(self, value):
            return int(value, 16)

        def to_url(self, value):
            return format(value, "x")

    fs = FileSystem(converters={"hex": Hex})

    @fs.route("/blocks/<hex:number>")
    class Block(Resource):
        pass

    assert fs.match("/blocks/ff").variables == {"number": 255}  # type: ignore[union-attr]
    assert fs.match("/blocks/zz") is None
    assert fs.path_for(Block, number=255) == "/blocks/ff"


def test_the_match_cache_follows_route_changes(fs: FileSystem) -> None:
    assert fs.match("/late.txt") is None

    @fs.route("/late.txt")
    class Late(Resource):
        pass

    assert fs.match("/late.txt").resource == "Late"  # type: ignore[union-attr]


def test_the_match_cache_is_bounded_and_forgets_the_oldest_path(
    fs: FileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from defuse2 import routing

    monkeypatch.setattr(routing, "MATCH_CACHE_SIZE", 4)

    @fs.route("/<name>.txt")
    class Text(Resource):
        pass

    fs.url_map.build()
    match = fs.url_map.match
    cache = match.__self__  # type: ignore[attr-defined]
    paths = [f"/{index}.txt" for index in range(6)] + ["/other", None]
    for path in paths:
        found = match(path)
        assert (found is None) == (path in ("/other", None))
    assert list(cache) == ["/4.txt", "/5.txt", "/other", None]
    assert match("/0.txt")[1] == {"name": "0"}  # forgotten, matched again
    assert len(cache) == 4
