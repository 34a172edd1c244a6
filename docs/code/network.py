"""A blocking route: the code of "Filesystems over a network" (blocking or async)."""

from __future__ import annotations

import os
import urllib.request

from defuse2 import FileSystem, Resource

API = os.environ.get("WEATHER_API", "http://127.0.0.1:8000")
fs = FileSystem()


@fs.route("/weather/<city>.txt", blocking=True, timeout=5)
class Weather(Resource):
    def read(self, city: str, size: int, offset: int) -> bytes:
        with urllib.request.urlopen(f"{API}/weather/{city}") as response:
            body: bytes = response.read()
        return body[offset : offset + size]
