"""A JSON web service as a tree of files: async methods, timeouts, a cache, invalidation.

Teaches what a filesystem over a network needs. Every item of the service is a file::

    $ ls -l /tmp/m/items
    -r--r--r-- 1 root root  56 Jan  1 00:00 apple.json
    -r--r--r-- 1 root root  60 Jan  1 00:00 banana.json
    $ cat /tmp/m/items/apple.json
    {
      "colour": "red",
      ...

- The methods that talk to the service are ``async def``: they await the network on the
  filesystem's event loop, so twenty ``cat`` commands wait for twenty answers at once,
  without a thread each, and other paths are answered meanwhile.
- A read that takes longer than its route's ``timeout`` answers ``ETIMEDOUT``
  ("Connection timed out") instead of hanging its caller; Ctrl-C of a waiting ``cat``
  ends it at once.
- What the service sent is kept in a cache, so ``stat`` and ``ls`` ask the service once;
  ``stat`` never waits for an item's body (``ls -l`` of a directory waits for the slowest
  ``stat`` in it), only ``read`` does.
- A hook started with the filesystem follows the service's feed of changes, drops what
  changed from the cache and tells the kernel to forget it (``fs.invalidate``): the next
  ``cat`` shows the new content.

Try it with the demo service (``--delay 2``: every item takes two seconds)::

    python examples/_json_service.py --port 8000 --delay 2 &
    JSON_API=http://127.0.0.1:8000 python examples/json_api.py /tmp/m
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import urllib.parse
from typing import Any

from defuse2 import Directory, FileSystem, Resource, attributes

API = os.environ.get("JSON_API", "http://127.0.0.1:8000")

log = logging.getLogger("json_api")

# Anything that waits on the service longer than this answers ETIMEDOUT (a route may
# say otherwise, as the items do below).
fs = FileSystem(quota="1 MiB", timeout=10.0)


async def fetch(path: str) -> bytes:
    """``GET API + path``: the body of a 200 answer (HTTP/1.0, the standard library only).

    :raises FileNotFoundError: the service answered 404.
    :raises ConnectionRefusedError: the service is down (the caller sees that errno).
    """
    url = urllib.parse.urlsplit(API + path)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    try:
        target = url.path + (f"?{url.query}" if url.query else "")
        writer.write(f"GET {target} HTTP/1.0\r\nHost: {url.netloc}\r\n\r\n".encode())
        status = (await reader.readline()).split()
        while (await reader.readline()).strip():
            pass  # the headers: HTTP/1.0 ends the body with the connection
        body = await reader.read()
    finally:
        writer.close()
    if status[1:2] == [b"404"]:
        raise FileNotFoundError(errno.ENOENT, "no such item", path)
    if status[1:2] != [b"200"]:
        raise OSError(errno.EIO, f"the service answered {b' '.join(status[1:]).decode()}")
    return body


class Cache:
    """What the service sent, kept until its feed of changes says otherwise."""

    def __init__(self) -> None:
        self.listing: dict[str, dict[str, Any]] | None = None  # id -> size and time
        self.bodies: dict[str, bytes] = {}

    async def items(self) -> dict[str, dict[str, Any]]:
        if self.listing is None:
            answer = json.loads(await fetch("/items"))
            self.listing = {item["id"]: item for item in answer["items"]}
        return self.listing

    async def body(self, name: str) -> bytes:
        if name not in self.bodies:
            self.bodies[name] = await fetch(f"/items/{urllib.parse.quote(name)}")
        return self.bodies[name]

    def forget(self, name: str) -> None:
        self.listing = None
        self.bodies.pop(name, None)


cache = Cache()


@fs.route("/items")
class Items(Directory):
    async def entries(self) -> list[str]:
        return [f"{name}.json" for name in await cache.items()]


@fs.route("/items/<name>.json", timeout=5.0)
class Item(Resource):
    async def getattr(self, name: str) -> attributes.Attributes:
        item = (await cache.items()).get(name)
        if item is None:
            raise FileNotFoundError(errno.ENOENT, "no such item", name)
        changed = int(item["updated"]) * 10**9
        return attributes.file(size=item["size"], mtime_ns=changed, ctime_ns=changed)

    async def read(self, name: str, size: int, offset: int) -> bytes:
        return (await cache.body(name))[offset : offset + size]


@fs.file("/cache", dynamic=True)
def cached() -> str:
    listed = "not fetched" if cache.listing is None else f"{len(cache.listing)} items"
    return f"listing: {listed}\nbodies: {', '.join(sorted(cache.bodies)) or 'none'}\n"


async def follow_changes() -> None:
    """Drop what the service says changed, and have the kernel forget it too."""
    seq = -1  # the service answers -1 with the number of the latest change, at once
    while True:
        try:
            answer = json.loads(await fetch(f"/changes?since={seq}&wait=25"))
        except OSError as error:  # the service is away: try again shortly
            log.warning("following changes: %s", error)
            await asyncio.sleep(1)
            continue
        seq = answer["seq"]
        for name in answer["changed"]:
            cache.forget(name)
            fs.invalidate(f"/items/{name}.json")
        if answer["changed"]:
            fs.invalidate("/items")


watcher: asyncio.Task[None] | None = None


@fs.on_start
async def start_following() -> None:
    global watcher
    watcher = asyncio.create_task(follow_changes())  # on the filesystem's event loop


@fs.on_stop
async def stop_following() -> None:
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


if __name__ == "__main__":
    fs.main()
