"""Routes and converters: the code of the "Routes and converters" how-to."""

import json

from werkzeug.routing import BaseConverter

from defuse2 import ContentFile, Directory, FileSystem

USERS = {1: "ada", 2: "linus"}


class HexConverter(BaseConverter):
    """``<hex:number>``: a number written in hexadecimal, such as ``ff``."""

    regex = "[0-9a-f]+"

    def to_python(self, value):
        return int(value, 16)

    def to_url(self, value):
        return format(value, "x")


fs = FileSystem(converters={"hex": HexConverter})


@fs.route("/users")
class Users(Directory):
    def entries(self):
        return ["me", *map(str, USERS)]


@fs.route("/users/<int:user_id>/profile.json")
class Profile(ContentFile):
    def content(self, user_id):
        if user_id not in USERS:
            raise FileNotFoundError(user_id)
        return json.dumps({"id": user_id, "name": USERS[user_id]}) + "\n"


@fs.route("/users/me/profile.json")
class MyProfile(ContentFile):
    def content(self, ctx):
        return json.dumps({"uid": ctx.uid, "pid": ctx.pid}) + "\n"


@fs.route("/colors/<any(red, green, blue):color>.txt")
class Color(ContentFile):
    def content(self, color):
        return f"{color}\n"


@fs.route("/hex/<hex:number>")
class Number(ContentFile):
    def content(self, number):
        return f"{number}\n"
