"""``examples/json_api.py`` over a real HTTP service on 127.0.0.1, with a slow network.

The service is ``examples/_json_service.py``, started by each test in a thread of this
process, with latency injected per path. In-process through the test client first; then
the example script itself, mounted on every binding as a user starts it, while requests
for some items hang: the concurrency and shutdown claims of the how-to are checked there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from defuse2.mount import is_mounted
from defuse2.testing import ScriptMount

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
import _json_service as service_module  # noqa: E402

CONFIGS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]
IDS = ["mfusepy-libfuse3", "mfusepy-libfuse2", "fusepy"]
HANG = 20.0  # seconds an item named "slow..." takes to answer
PROMPT = 2.0  # seconds within which a signal ends the mount


def latency(path: str) -> float:
    """The slow network: "slow*" items hang, "second*" items take a second."""
    name = path.rpartition("/")[2]
    if name.startswith("slow"):
        return HANG
    return 1.0 if name.startswith("second") else 0.0


@pytest.fixture
def service() -> service_module.Service:
    items = dict(service_module.SAMPLE)
    items.update({f"second{n}": {"n": n} for n in range(20)})
    items["slow"] = {"slow": True}
    return service_module.Service(items)


@pytest.fixture
def url(service: service_module.Service) -> Iterator[str]:
    with service_module.running(service, delay=latency) as address:
        yield address


def put(url: str, name: str, value: Any) -> None:
    data = json.dumps(value).encode()
    urllib.request.urlopen(urllib.request.Request(f"{url}/items/{name}", data, method="PUT"))


def eventually(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def load(url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``examples/json_api.py`` as a new module, talking to ``url``."""
    monkeypatch.setenv("JSON_API", url)
    spec = importlib.util.spec_from_file_location("json_api_example", EXAMPLES / "json_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- in-process ------------------------------------------------------------------------


def test_items_as_files_and_changes_followed(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    example = load(url, monkeypatch)
    with example.fs.test_client() as client:  # the hooks start following changes
        assert "apple.json" in client.listdir("/items")
        assert json.loads(client.read_bytes("/items/apple.json"))["colour"] == "red"
        assert client.stat("/items/apple.json").st_size == len(
            client.read_bytes("/items/apple.json")
        )
        assert "apple" in client.read_bytes("/cache").decode()
        put(url, "apple", {"name": "apple", "colour": "green"})
        assert eventually(lambda: b"green" in client.read_bytes("/items/apple.json"))
        put(url, "date", {"name": "date"})
        assert eventually(lambda: "date.json" in client.listdir("/items"))
        with pytest.raises(FileNotFoundError):
            client.stat("/items/elderberry.json")


def test_a_read_past_its_timeout_is_etimedout(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    example = load(url, monkeypatch)
    client = example.fs.test_client()
    start = time.monotonic()
    with pytest.raises(TimeoutError):  # ETIMEDOUT, after the route's 5 s
        client.read_bytes("/items/slow.json")
    assert time.monotonic() - start < HANG / 2


def test_a_service_that_is_down_is_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with service_module.running(service_module.Service()) as address:
        pass  # nobody listens there any more
    client = load(address, monkeypatch).fs.test_client()
    with pytest.raises(ConnectionRefusedError):
        client.listdir("/items")


# -- mounted by the example script -------------------------------------------------------


class Mount:
    """``python examples/json_api.py MOUNTPOINT --foreground`` over the test's service."""

    def __init__(self, url: str, tmp_path: Path, binding: str, libfuse: str) -> None:
        self.root = tmp_path / "m"
        self.root.mkdir()
        self.log = tmp_path / "log.txt"
        command = [sys.executable, str(EXAMPLES / "json_api.py"), str(self.root), "--foreground"]
        command += ["--binding", binding, "--libfuse", libfuse]
        env = {**os.environ, "JSON_API": url}
        self.server = ScriptMount(command, self.root, self.log, env=env, major=int(libfuse))
        self.process = self.server.start()
        self.clients: list[subprocess.Popen[bytes]] = []

    def cat(self, name: str) -> subprocess.Popen[bytes]:
        client = subprocess.Popen(
            ["cat", str(self.root / "items" / name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            if client.poll() is None:
                client.kill()
            client.communicate()
        self.server.stop()


@pytest.fixture(params=CONFIGS, ids=IDS)
def mounted(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Iterator[Mount]:
    mount = Mount(url, tmp_path, *request.param)
    try:
        yield mount
    finally:
        mount.close()


def elapsed(function: Any, *args: Any) -> float:
    start = time.monotonic()
    function(*args)
    return time.monotonic() - start


@pytest.mark.mount
def test_twenty_reads_of_a_slow_service_wait_together(mounted: Mount) -> None:
    clients = [mounted.cat(f"second{n}.json") for n in range(20)]
    start = time.monotonic()
    answers = [json.loads(client.communicate(timeout=HANG)[0]) for client in clients]
    took = time.monotonic() - start
    assert answers == [{"n": n} for n in range(20)]
    assert took < 6, f"{took:.1f} s for twenty 1 s answers (one after another: 20 s)"


@pytest.mark.mount
def test_other_paths_answer_while_a_read_hangs_and_sigterm_ends_it(
    mounted: Mount, url: str
) -> None:
    hung = mounted.cat("slow.json")
    time.sleep(0.5)
    assert hung.poll() is None
    items = mounted.root / "items"
    assert elapsed(os.listdir, items) < 1.0
    assert elapsed((items / "banana.json").read_bytes) < 1.0
    assert elapsed(os.stat, items / "cherry.json") < 1.0
    assert elapsed((mounted.root / "cache").read_text) < 1.0
    assert elapsed((mounted.root / "notes").write_text, "the store answers too\n") < 1.0

    start = time.monotonic()
    mounted.process.send_signal(signal.SIGTERM)
    assert mounted.process.wait(timeout=HANG) == 0, mounted.log.read_text()
    assert time.monotonic() - start < PROMPT
    assert not is_mounted(mounted.root)
    assert hung.wait(timeout=PROMPT) != 0  # let go with an error, not left hanging


@pytest.mark.mount
def test_a_change_announced_by_the_service_is_seen(mounted: Mount, url: str) -> None:
    apple = mounted.root / "items" / "apple.json"
    assert json.loads(apple.read_text())["colour"] == "red"
    put(url, "apple", {"name": "apple", "colour": "green", "stock": 12, "origin": "Normandy"})

    def is_green() -> bool:
        try:
            return bool(json.loads(apple.read_text())["colour"] == "green")
        except ValueError:  # libfuse 2: cut at the old size until its attributes expire
            return False

    # libfuse 3: the kernel is told at once (fs.invalidate); libfuse 2 has no such call,
    # and the cached size of the file lasts up to attr_timeout (1 s): see the how-to.
    assert eventually(is_green, 5)
    assert json.loads(apple.read_text())["origin"] == "Normandy"
