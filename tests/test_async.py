"""``async def`` and ``blocking`` resource methods, timeouts, hooks and invalidation.

In-process through the test client first (fast, no FUSE), then mounted: twenty reads that
each await a second finish together; Ctrl-C of a client waiting on one ends it at once;
what user code raises, ``KeyboardInterrupt`` included, is ``EIO`` and the mount serves on.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from defuse2 import ContentFile, Directory, FileSystem, Resource, attributes
from defuse2.errors import DefuseError
from defuse2.lifecycle import StartError
from defuse2.mount import MountError, is_mounted, libfuse_major
from errnos import errno_of


def read(client: Any, path: str) -> bytes:
    fd = client.open(path, os.O_RDONLY)
    try:
        return client.read(fd, 1 << 16)  # type: ignore[no-any-return]
    finally:
        client.close(fd)


# -- in-process ------------------------------------------------------------------------


def test_async_and_plain_resources_in_one_filesystem() -> None:
    fs = FileSystem()

    @fs.route("/async/<name>")
    class Remote(Resource):
        async def getattr(self, name: str) -> attributes.Attributes:
            await asyncio.sleep(0)
            return attributes.file(size=len(name))

        async def read(self, name: str, size: int, offset: int) -> bytes:
            await asyncio.sleep(0.01)
            return name.encode()[offset : offset + size]

    @fs.route("/async")
    class Listing(Directory):
        async def entries(self) -> list[str]:
            await asyncio.sleep(0)
            return ["a", "bb"]

    @fs.route("/plain")
    class Plain(ContentFile):
        def content(self) -> str:
            return "plain\n"

    @fs.file("/motd")
    async def motd() -> str:
        await asyncio.sleep(0)
        return "hello\n"

    client = fs.test_client()
    assert sorted(client.listdir("/async")) == ["a", "bb"]
    assert client.stat("/async/bb").st_size == 2
    assert read(client, "/async/bb") == b"bb"
    assert read(client, "/plain") == b"plain\n"
    assert read(client, "/motd") == b"hello\n"
    client.write_bytes("/stored", b"the store is not routed")
    assert read(client, "/stored") == b"the store is not routed"


def test_async_content_of_a_shape() -> None:
    fs = FileSystem()

    @fs.route("/users/<name>.json")
    class Profile(ContentFile):
        async def content(self, name: str) -> str:
            await asyncio.sleep(0)
            return f'{{"name": "{name}"}}\n'

    client = fs.test_client()
    assert read(client, "/users/ann.json") == b'{"name": "ann"}\n'
    assert client.stat("/users/ann.json").st_size == len(b'{"name": "ann"}\n')


def test_an_async_method_past_its_timeout_is_cancelled_and_answers_etimedout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs = FileSystem(timeout=10.0)
    cancelled = threading.Event()

    @fs.route("/slow/<name>", timeout=0.2)
    class Slow(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            return attributes.file(size=4)

        async def read(self, name: str, size: int, offset: int) -> bytes:
            try:
                await asyncio.sleep(30)
            finally:
                cancelled.set()
            return b"late"

    client = fs.test_client()
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert errno_of(read, client, "/slow/x") == errno.ETIMEDOUT
    assert time.monotonic() - start < 10  # the route's 0.2 s, not the filesystem's 10 s
    assert cancelled.wait(5)  # the coroutine saw CancelledError where it awaited
    assert "read /slow/x (route /slow/<name>) timed out after 0.2 s" in caplog.text


def test_a_blocking_method_past_its_timeout_answers_etimedout_and_runs_on() -> None:
    fs = FileSystem(timeout=0.2)
    finished = threading.Event()
    release = threading.Event()

    @fs.route("/slow", blocking=True)
    class Slow(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=4)

        def read(self, size: int, offset: int) -> bytes:
            release.wait(20)  # a plain method: nothing can interrupt it
            finished.set()
            return b"late"

    client = fs.test_client()
    assert errno_of(read, client, "/slow") == errno.ETIMEDOUT
    assert not finished.is_set()  # abandoned, still running on the pool
    release.set()
    assert finished.wait(5)


def test_twenty_async_reads_through_the_test_client_wait_together() -> None:
    fs = FileSystem()

    @fs.route("/<name>")
    class Remote(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            return attributes.file(size=4)

        async def read(self, name: str, size: int, offset: int) -> bytes:
            await asyncio.sleep(1)
            return b"done"

    client = fs.test_client()
    answers: list[bytes] = []
    threads = [
        threading.Thread(target=lambda n=n: answers.append(read(client, f"/f{n}")))
        for n in range(20)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [b"done"] * 20
    assert time.monotonic() - start < 6  # one after another: 20 s


def test_no_timeout_with_none() -> None:
    fs = FileSystem(timeout=0.05)

    @fs.route("/patient", timeout=None)
    class Patient(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=2)

        async def read(self, size: int, offset: int) -> bytes:
            await asyncio.sleep(0.3)
            return b"ok"

    assert read(fs.test_client(), "/patient") == b"ok"


@pytest.mark.parametrize("error", [SystemExit(3), GeneratorExit(), RuntimeError("bug")])
def test_what_an_async_method_raises_is_eio_and_the_loop_lives_on(error: BaseException) -> None:
    fs = FileSystem()

    @fs.route("/<name>")
    class Failing(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            return attributes.file(size=2)

        async def read(self, name: str, size: int, offset: int) -> bytes:
            if name == "bad":
                raise error
            return b"ok"

    client = fs.test_client()
    assert errno_of(read, client, "/bad") == errno.EIO
    assert read(client, "/good") == b"ok"  # the event loop still runs


@pytest.mark.parametrize(
    "declare",
    [
        lambda fs: fs.route("/x")(
            type("Gen", (Resource,), {"readdir": _names, "__module__": __name__})
        ),
        lambda fs: fs.file("/y")(_lines),
    ],
    ids=["method", "file"],
)
def test_an_async_generator_is_a_registration_error(declare: Any) -> None:
    fs = FileSystem()
    with pytest.raises(DefuseError, match="async generator"):
        declare(fs)
        fs.routes()  # the map is built on first use


async def _names(self: Any) -> Any:
    yield "a"


async def _lines() -> Any:
    yield "a"


def test_async_where_defuse2_calls_plain_functions_is_a_registration_error() -> None:
    from defuse2.store.memory import MemoryStore

    class AsyncStore(MemoryStore):
        async def getattr(self, path: str, fh: int | None = None) -> Any:  # type: ignore[override]
            raise NotImplementedError

    with pytest.raises(DefuseError, match=r"AsyncStore.getattr\(\) is async def"):
        FileSystem(store=AsyncStore())

    class Converter:
        regex = "[a-z]+"

        async def to_python(self, value: str) -> str:
            return value

    with pytest.raises(DefuseError, match=r"Converter.to_python\(\) is async def"):
        FileSystem(converters={"lower": Converter})


# -- hooks --------------------------------------------------------------------------------


def test_hooks_run_in_order_around_a_test_client(caplog: pytest.LogCaptureFixture) -> None:
    fs = FileSystem()
    events: list[str] = []

    @fs.on_start
    def first() -> None:
        events.append("start 1")

    @fs.on_start
    async def second() -> None:
        await asyncio.sleep(0)
        events.append(f"start 2 on the loop: {asyncio.get_running_loop() is fs.runner.loop()}")

    @fs.on_stop
    def closing() -> None:
        events.append("stop 1")

    @fs.on_stop
    async def broken() -> None:
        raise ConnectionError("already closed")

    with caplog.at_level(logging.ERROR, logger="defuse2"), fs.test_client() as client:
        client.mkdir("/d")
        events.append("serving")
    assert events == ["start 1", "start 2 on the loop: True", "serving", "stop 1"]
    assert "on_stop hook test_hooks_run_in_order_around_a_test_client.<locals>.broken()" in (
        caplog.text
    )
    assert "ConnectionError: already closed" in caplog.text


def test_a_failing_start_hook_stops_everything_with_its_name() -> None:
    fs = FileSystem()
    stopped: list[str] = []

    @fs.on_start
    def connect() -> None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    @fs.on_start
    def never() -> None:
        stopped.append("started anyway")

    fs.on_stop(lambda: stopped.append("stopped"))
    with pytest.raises(StartError, match=r"on_start hook .*connect\(\) failed.*Connection refused"):
        fs.test_client().__enter__()
    assert stopped == []


def test_hooks_take_no_arguments() -> None:
    fs = FileSystem()
    with pytest.raises(DefuseError, match=r"must take no arguments"):
        fs.on_start(lambda connection: None)


# -- mounted --------------------------------------------------------------------------------


@pytest.fixture
def slow_fs() -> FileSystem:
    """Routes whose reads await (or sleep) as long as their name says, in tenths of s."""
    fs = FileSystem(timeout=30.0)

    @fs.route("/async/<int:tenths>/<name>", dynamic=True)
    class Awaiting(Resource):
        def getattr(self, tenths: int, name: str) -> attributes.Attributes:
            return attributes.file(size=5)

        async def read(self, tenths: int, name: str, size: int, offset: int) -> bytes:
            if name == "interrupt":
                raise KeyboardInterrupt
            await asyncio.sleep(tenths / 10)
            return b"done\n"[offset : offset + size]

    @fs.route("/plain/<name>")
    class Plain(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            return attributes.file(size=5)

        def read(self, name: str, size: int, offset: int) -> bytes:
            if name == "interrupt":
                raise KeyboardInterrupt
            if name == "exit":
                raise SystemExit(1)
            return b"plain"

    @fs.route("/pool/<name>", blocking=True)
    class Pooled(Plain):
        pass

    return fs


@pytest.fixture
def root(slow_fs: FileSystem, mountpoint: str) -> Iterator[Path]:
    with slow_fs.mounted(mountpoint) as mounted:
        yield mounted


@pytest.mark.mount
def test_twenty_reads_awaiting_a_second_each_finish_together(root: Path) -> None:
    answers: list[bytes] = []
    threads = [
        threading.Thread(target=lambda n=n: answers.append((root / f"async/10/{n}").read_bytes()))
        for n in range(20)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    assert answers == [b"done\n"] * 20
    assert elapsed < 6, f"{elapsed:.1f} s: not concurrent (one after the other takes 20 s)"


@pytest.mark.mount
@pytest.mark.parametrize("kind", ["plain", "pool", "async/0"])
def test_keyboard_interrupt_in_a_method_is_eio_and_the_mount_stays_up(
    root: Path, kind: str
) -> None:
    assert errno_of((root / kind / "interrupt").read_bytes) == errno.EIO
    if kind != "async/0":
        assert errno_of((root / kind / "exit").read_bytes) == errno.EIO
    assert (root / "plain" / "after").read_bytes() == b"plain"
    assert is_mounted(root)


@pytest.mark.mount
def test_ctrl_c_of_a_client_waiting_on_an_async_read_ends_it_at_once(root: Path) -> None:
    # The route is dynamic (direct_io): the read is the client's own request, which the
    # kernel interrupts (FUSE_INTERRUPT) when the client gets SIGINT.
    client = subprocess.Popen(["cat", str(root / "async/600/hang")], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    start = time.monotonic()
    client.send_signal(signal.SIGINT)
    assert client.wait(timeout=20) == -signal.SIGINT
    assert time.monotonic() - start < 5  # not the 60 s the read awaits
    assert (root / "plain" / "after").read_bytes() == b"plain"


@pytest.mark.mount
def test_a_plain_method_past_the_timeout_is_logged(
    mountpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FileSystem(timeout=0.3)

    @fs.route("/sleepy")
    class Sleepy(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=2)

        def read(self, size: int, offset: int) -> bytes:
            time.sleep(1.5)  # nothing can cut it short: it answers, late
            return b"ok"

    with caplog.at_level(logging.WARNING, logger="defuse2.mount"), fs.mounted(mountpoint) as root:
        assert (root / "sleepy").read_bytes() == b"ok"
    assert "read /sleepy has run for " in caplog.text
    assert "s, past the 0.3 s timeout: a plain method cannot be cut short" in caplog.text


@pytest.mark.mount
def test_hooks_run_around_a_mount(mountpoint: str) -> None:
    fs = FileSystem()
    events: list[str] = []
    fs.on_start(lambda: events.append("start"))
    fs.on_stop(lambda: events.append("stop"))
    with fs.mounted(mountpoint) as mounted:
        events.append(f"serving {is_mounted(mounted)}")
    assert events == ["start", "serving True", "stop"]


@pytest.mark.mount
def test_a_failing_start_hook_fails_the_mount(mountpoint: str) -> None:
    fs = FileSystem()

    @fs.on_start
    def connect() -> None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    with (
        pytest.raises(MountError, match=r"connect\(\) failed.*Connection refused"),
        fs.mounted(mountpoint),
    ):
        pass  # pragma: no cover
    assert not is_mounted(mountpoint)


@pytest.mark.mount
def test_invalidate_makes_the_kernel_forget_a_changed_file(mountpoint: str) -> None:
    fs = FileSystem()
    versions = {"news": "old\n"}

    @fs.route("/<name>.txt")
    class News(ContentFile):
        def content(self, name: str) -> str:
            return versions[name]

    # Attributes cached for a minute: only an invalidation can show the change in time.
    with fs.mounted(mountpoint, attr_timeout=60, entry_timeout=60) as mounted:
        path = mounted / "news.txt"
        assert path.read_text() == "old\n"
        versions["news"] = "brand new\n"
        assert os.stat(path).st_size == 4  # the kernel's cached answer
        fs.invalidate("/news.txt", wait=5)
        if libfuse_major() == 2:
            pytest.skip("libfuse 2 has no invalidation: the size stays cached (documented)")
        assert os.stat(path).st_size == 10
        assert path.read_text() == "brand new\n"
