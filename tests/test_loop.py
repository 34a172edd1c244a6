"""The serving loop: spare readers, per-reply timeouts, kept thread states, races.

libfuse's single-threaded loop serves, and spare reader threads join it only while a
call is slow (:mod:`defuse2.readers`); the timeouts of each attribute reply are chosen
without races although several threads answer (:mod:`defuse2.replytimeouts`); with
``-o threads``, libfuse's worker threads keep their Python thread state
(:mod:`defuse2.threadstate`); and a file replaced by ``rename`` while another process
opens it never makes that ``open`` fail with ``ENOENT``.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.targets import CliMount
from defuse2 import FileSystem, Resource, attributes
from defuse2.replytimeouts import ReplyTimeouts

# -- per-reply timeouts --------------------------------------------------------------------


def run_in_thread(function: object) -> None:
    thread = threading.Thread(target=function)  # type: ignore[arg-type]
    thread.start()
    thread.join()


def test_one_thread_gets_the_timeout_each_answer_asks_for() -> None:
    config = SimpleNamespace(attr_timeout=-1.0, entry_timeout=-1.0)
    timeouts = ReplyTimeouts(config, 60.0)
    assert (config.attr_timeout, config.entry_timeout) == (60.0, 60.0)
    for seconds in (0.0, 1.5, 60.0, 1.5, 0.0, 60.0):
        timeouts.choose(seconds)
        assert (config.attr_timeout, config.entry_timeout) == (seconds, seconds)
    assert timeouts.pending == 0


def test_a_shorter_reply_keeps_its_timeout_until_its_thread_comes_back() -> None:
    config = SimpleNamespace(attr_timeout=1.0, entry_timeout=1.0)
    timeouts = ReplyTimeouts(config, 60.0)
    timeouts.choose(1.0)  # this thread may not have sent its 1 s reply yet
    run_in_thread(lambda: timeouts.choose(60.0))  # another thread: harmless 1 s for it
    assert config.attr_timeout == 1.0
    assert timeouts.pending == 1
    run_in_thread(lambda: timeouts.choose(0.0))
    assert (timeouts.pending, config.attr_timeout) == (2, 0.0)
    timeouts.choose(60.0)  # this thread's reply is sent; the other's (0 s) may not be
    assert (timeouts.pending, config.attr_timeout) == (1, 0.0)


# -- mounted -------------------------------------------------------------------------------


def reader_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "defuse2 reader")


@pytest.mark.mount
def test_spare_readers_come_while_a_call_is_slow_and_go_after(mountpoint: str) -> None:
    fs = FileSystem()
    release = threading.Event()

    @fs.route("/<name>")
    class Files(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            return attributes.file(size=4)

        def read(self, name: str, size: int, offset: int) -> bytes:
            if name == "slow":
                release.wait(20)
            return b"data"[offset : offset + size]

    with fs.mounted(mountpoint) as root:
        assert reader_threads() == 0
        slow = threading.Thread(target=(root / "slow").read_bytes)
        slow.start()
        start = time.monotonic()
        for number in range(20):  # answered by a spare reader meanwhile
            assert (root / f"fast-{number}").read_bytes() == b"data"
        assert time.monotonic() - start < 10  # not 20 s: the slow read held nothing back
        assert reader_threads() >= 1
        release.set()
        slow.join()
        deadline = time.monotonic() + 10
        number = 0
        while reader_threads() and time.monotonic() < deadline:
            os.stat(root / f"after-{number}")  # a reader leaves after a request
            number += 1
            time.sleep(0.01)
        assert reader_threads() == 0


@pytest.mark.mount
def test_worker_threads_keep_their_python_state(mountpoint: str) -> None:
    # A threading.local lives in the thread state: it survives from one callback to the
    # next only when the state does (ctypes alone would make a new one per callback).
    fs = FileSystem()
    local = threading.local()
    seen: list[int] = []

    @fs.route("/<name>")
    class Counted(Resource):
        def getattr(self, name: str) -> attributes.Attributes:
            local.calls = getattr(local, "calls", 0) + 1
            seen.append(local.calls)
            return attributes.file(size=0)

    with fs.mounted(mountpoint, threads=True) as root:
        for number in range(40):
            os.stat(root / f"file-{number}")  # a new name each time: one getattr each
    assert max(seen) > 1


def race_replacing_and_opening(directory: Path, seconds: float) -> dict[str, int]:
    """One thread replaces ``f`` by ``rename`` in a loop, two open and read it: errors."""
    (directory / "f").write_bytes(b"v0")
    stop = time.monotonic() + seconds
    errors: dict[str, int] = {}

    def replace() -> None:
        version = 0
        while time.monotonic() < stop:
            version += 1
            (directory / "tmp").write_bytes(b"v%d" % version)
            os.rename(directory / "tmp", directory / "f")

    def open_and_read() -> None:
        while time.monotonic() < stop:
            try:
                fd = os.open(directory / "f", os.O_RDONLY)
                try:
                    os.read(fd, 16)
                finally:
                    os.close(fd)
            except OSError as error:
                name = errno.errorcode[error.errno or 0]
                errors[name] = errors.get(name, 0) + 1

    threads = [threading.Thread(target=f) for f in (replace, open_and_read, open_and_read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.mount
def test_open_of_a_file_replaced_meanwhile_is_never_enoent() -> None:
    # libfuse hands `open` the hidden name of the old version; when its last close removed
    # that name meanwhile, defuse2 answers ESTALE and the kernel looks the name up again.
    # (libfuse 3; libfuse 2 itself answers ENOENT for a node that lost its name.) A rare
    # second race during that retry gives ESTALE, as libfuse does on either loop.
    with CliMount("conformance.apps:roomy", "mfusepy", "3") as mountpoint:
        directory = Path(mountpoint) / "race"
        directory.mkdir()
        errors = race_replacing_and_opening(directory, 3.0)
    assert "ENOENT" not in errors, errors
    assert set(errors) <= {"ESTALE"}
