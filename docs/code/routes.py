"""Routes and converters: the code of the "Routes and converters" how-to."""

import json

from werkzeug.routing import BaseConverter

from defuse2 import ContentFile, Context, Directory, FileSystem

USERS = {1: "ada", 2: "linus"}


class HexConverter(BaseConverter):
    """``<hex:number>``: a number written in hexadecimal, such as ``ff``."""

    regex = "[0-9a-f]+"

    def to_python(self, value: str) -> int:
        return int(value, 16)

    def to_url(self, value: int) -> str:
        return format(value, "x")


fs = FileSystem(converters={"hex": HexConverter})


@fs.route("/users")
class Users(Directory):
    def entries(self) -> list[str]:
        return ["me", *map(str, USERS)]


@fs.route("/users/<int:user_id>/profile.json")
class Profile(ContentFile):
    def content(self, user_id: int) -> str:
        if user_id not in USERS:
            raise FileNotFoundError(user_id)
        return json.dumps({"id": user_id, "name": USERS[user_id]}) + "\n"


@fs.route("/users/me/profile.json")
class MyProfile(ContentFile):
    def content(self, ctx: Context) -> str:
        return json.dumps({"uid": ctx.uid, "pid": ctx.pid}) + "\n"


@fs.route("/colors/<any(red, green, blue):color>.txt")
class Color(ContentFile):
    def content(self, color: str) -> str:
        return f"{color}\n"


@fs.route("/hex/<hex:number>")
class Number(ContentFile):
    def content(self, number: int) -> str:
        return f"{number}\n"
