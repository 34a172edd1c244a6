"""A small JSON web service for ``json_api.py`` to mount: items, and a feed of changes.

Not a filesystem (the leading ``_`` keeps it out of ``defuse2 examples``): the service
that ``json_api.py`` shows as files, standard library only, to try the example and to test
it. Its API::

    GET /items                   {"items": [{"id": "apple", "size": 56, "updated": T}, ...]}
    GET /items/<id>              the item's JSON, as the listing's "size" counts it
    PUT /items/<id>              replace the item with the request's JSON body
    DELETE /items/<id>           remove it
    GET /changes?since=N&wait=S  {"seq": M, "changed": ["apple"]}: the items changed after
                                 change N, waiting up to S seconds for one (a long poll);
                                 since=-1 answers at once with the current seq

Run it::

    python examples/_json_service.py --port 8000 [--delay SECONDS]

``--delay`` makes every item answer that slowly: a slow network to try the mount with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SAMPLE = {
    "apple": {"name": "apple", "colour": "red", "stock": 12},
    "banana": {"name": "banana", "colour": "yellow", "stock": 30},
    "cherry": {"name": "cherry", "colour": "dark red", "stock": 250},
}


class Service:
    """The items and the numbered list of their changes; safe from many threads."""

    def __init__(self, items: dict[str, Any] | None = None) -> None:
        self._items = {name: self._render(value) for name, value in (items or {}).items()}
        self._updated = dict.fromkeys(self._items, int(time.time()))
        self._changes: list[str] = []  # the id changed by change number 1, 2, ...
        self._changed = threading.Condition()

    @staticmethod
    def _render(value: Any) -> bytes:
        return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()

    def listing(self) -> dict[str, Any]:
        with self._changed:
            return {
                "items": [
                    {"id": name, "size": len(body), "updated": self._updated[name]}
                    for name, body in sorted(self._items.items())
                ]
            }

    def item(self, name: str) -> bytes | None:
        with self._changed:
            return self._items.get(name)

    def put(self, name: str, value: Any) -> None:
        with self._changed:
            self._items[name] = self._render(value)
            self._updated[name] = int(time.time())
            self._change(name)

    def delete(self, name: str) -> bool:
        with self._changed:
            if self._items.pop(name, None) is None:
                return False
            del self._updated[name]
            self._change(name)
            return True

    def _change(self, name: str) -> None:
        self._changes.append(name)
        self._changed.notify_all()

    def changes(self, since: int, wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        with self._changed:
            while since >= 0 and len(self._changes) <= since:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            changed = sorted(set(self._changes[max(since, 0) :])) if since >= 0 else []
            return {"seq": len(self._changes), "changed": changed}


def handler(service: Service, delay: Callable[[str], float]) -> type[BaseHTTPRequestHandler]:
    """The request handler of ``service``; ``delay(path)``: seconds to wait before
    answering a request for ``path`` (a slow network)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
            url = urllib.parse.urlsplit(self.path)
            time.sleep(delay(url.path))
            if url.path == "/items":
                self._send(200, json.dumps(service.listing()).encode())
            elif url.path.startswith("/items/"):
                body = service.item(urllib.parse.unquote(url.path[len("/items/") :]))
                self._send(200, body) if body is not None else self._send(404, b"{}")
            elif url.path == "/changes":
                query = urllib.parse.parse_qs(url.query)
                since = int(query.get("since", ["-1"])[0])
                wait = min(float(query.get("wait", ["0"])[0]), 60.0)
                self._send(200, json.dumps(service.changes(since, wait)).encode())
            else:
                self._send(404, b"{}")

        def do_PUT(self) -> None:  # noqa: N802
            name = urllib.parse.unquote(self.path[len("/items/") :])
            length = int(self.headers.get("Content-Length", "0"))
            service.put(name, json.loads(self.rfile.read(length)))
            self._send(200, b"{}")

        def do_DELETE(self) -> None:  # noqa: N802
            found = service.delete(urllib.parse.unquote(self.path[len("/items/") :]))
            self._send(200 if found else 404, b"{}")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    return Handler


@contextlib.contextmanager
def running(
    service: Service, port: int = 0, delay: Callable[[str], float] = lambda path: 0.0
) -> Iterator[str]:
    """Serve ``service`` on 127.0.0.1 from a thread for a ``with`` block: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(service, delay))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="json service", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per item request")
    args = parser.parse_args()

    def delay(path: str) -> float:
        return args.delay if path.startswith("/items/") else 0.0

    with running(Service(SAMPLE), args.port, delay) as url:
        print(f"serving {url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
