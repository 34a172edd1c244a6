"""Content files and directories: the code of the "Files and directories" how-to."""

import time

from defuse2 import ContentFile, FileSystem

fs = FileSystem()
PLANETS = {"mercury": 0.39, "venus": 0.72, "earth": 1.0}


@fs.file("/motd")
def motd() -> str:
    return "Welcome!\n"


@fs.file("/clock", dynamic=True)
def clock() -> str:
    return time.strftime("%H:%M:%S\n")


@fs.directory("/planets")
def planets() -> list[str]:
    return [f"{name}.txt" for name in PLANETS]


@fs.route("/planets/<name>.txt")
class Planet(ContentFile):
    mode = 0o440

    def content(self, name: str) -> str:
        if name not in PLANETS:
            raise FileNotFoundError(name)
        return f"{name} orbits at {PLANETS[name]} AU\n"
