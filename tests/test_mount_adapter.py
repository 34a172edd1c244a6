"""The mount adapter without a mount: option parsing, choosing the binding, the operations it
registers, tracing, the errno boundary and the caller's context per request.

Real mounts are in ``test_mount.py``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from defuse2 import FileSystem, Resource
from defuse2.adapter import Operations, operations_class
from defuse2.assembly import adapter_class
from defuse2.callbacks import guarded_call
from defuse2.caller import FuseContext, context_function
from defuse2.mount import (
    MountError,
    binding_name,
    fuse_options,
    is_mounted,
    libfuse_major,
    mounted,
    parse_options,
)
from defuse2.store.base import Context
from motd import small_filesystem

TIMEOUT = 20.0


def test_parse_options_splits_flags_and_values() -> None:
    assert parse_options("allow_other, max_read=65536,,fsname=a=b") == {
        "allow_other": True,
        "max_read": "65536",
        "fsname": "a=b",
    }


@pytest.mark.parametrize("major", [2, 3])
def test_default_options(major: int) -> None:
    options = fuse_options({}, major=major)
    assert options["default_permissions"] is True
    assert options["nothreads"] is True  # libfuse's loop in C, spare readers when slow
    assert "hard_remove" not in options
    assert options["fsname"] == "defuse2"
    assert "allow_other" not in options
    assert ("big_writes" in options) == (major == 2)
    assert ("max_write" in options) == (major == 2)


def test_options_pass_through_and_remove_defaults() -> None:
    options = fuse_options(
        {"default_permissions": False, "allow_other": True, "max_read": 4096}, major=3
    )
    assert "default_permissions" not in options
    assert options["allow_other"] is True
    assert options["max_read"] == 4096


@pytest.mark.parametrize(
    ("options", "nothreads"),
    [({"threads": True}, False), ({"threads": "yes"}, False), ({"threads": "0"}, True),
     ({"nothreads": True}, True)],
)  # fmt: skip
def test_threads_and_nothreads_choose_the_loop(options: dict[str, Any], nothreads: bool) -> None:
    settings = fuse_options(options, major=3)
    assert "threads" not in settings
    assert settings.get("nothreads", False) is nothreads


def test_binding_name_default_env_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEFUSE2_BINDING", raising=False)
    assert binding_name() == "mfusepy"
    monkeypatch.setenv("DEFUSE2_BINDING", "fusepy")
    assert binding_name() == "fusepy"
    assert binding_name("mfusepy") == "mfusepy"
    with pytest.raises(MountError, match="unknown binding"):
        binding_name("llfuse")


@pytest.mark.mount
def test_one_libfuse_per_process_for_mfusepy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSE_LIBRARY_NAME", raising=False)
    monkeypatch.delenv("FUSE_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("DEFUSE2_LIBFUSE", raising=False)
    loaded = libfuse_major("mfusepy")
    assert loaded in (2, 3)
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "2" if loaded == 3 else "3")
    with pytest.raises(MountError, match="one libfuse per process"):
        libfuse_major("mfusepy")
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "3")
    with pytest.raises(MountError, match="libfuse 2 only"):
        libfuse_major("fusepy")
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "4")
    with pytest.raises(MountError, match="must be 2 or 3"):
        libfuse_major("mfusepy")


class FakeDispatcher:
    """Implements getattr, readdir and read only."""

    operations = frozenset({"getattr", "readdir", "read"})

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        if path == "/missing":
            raise FileNotFoundError(errno.ENOENT, "No such file")
        if path == "/bug":
            raise ValueError("escaped the dispatcher")
        return {"st_mode": 0o100444, "st_size": 3}

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return b"abc"[offset : offset + size]

    def describe(self, path: str | None) -> tuple[str, dict[str, Any]]:
        return ("/<name>", {"name": path}) if path != "/store" else ("store", {})


@pytest.mark.parametrize("binding", ["mfusepy", "fusepy"])
def test_unimplemented_operations_are_not_registered(binding: str) -> None:
    adapter = adapter_class(FakeDispatcher(), binding, xattrs=True, trace=False)  # type: ignore[arg-type]
    for name in ("getattr", "readdir", "read"):
        assert callable(getattr(adapter, name))
    for name in ("write", "getxattr", "listxattr", "create", "rename", "access"):
        assert getattr(adapter, name) is None, name
    if binding == "fusepy":
        for name in ("bmap", "ioctl", "fsyncdir"):
            assert getattr(adapter, name) is None, name
    assert adapter.use_ns is True


def test_xattrs_can_be_left_out() -> None:
    class WithXattrs(FakeDispatcher):
        operations = frozenset({"getattr", "write", "getxattr", "setxattr", "listxattr"})

    assert callable(operations_class(WithXattrs()).getxattr)  # type: ignore[arg-type]
    adapter = operations_class(WithXattrs(), xattrs=False)  # type: ignore[arg-type]
    assert adapter.getxattr is None
    assert adapter.setxattr is None
    assert callable(adapter.write)


def test_no_trace_means_no_wrapping() -> None:
    adapter = operations_class(FakeDispatcher())  # type: ignore[arg-type]
    assert adapter.getattr is Operations.getattr


def test_untraced_operations_hand_on_to_the_dispatcher_directly() -> None:
    dispatcher = FakeDispatcher()
    operations = operations_class(dispatcher)(dispatcher)  # type: ignore[arg-type]
    assert operations.read == dispatcher.read  # one Python call less per callback
    assert operations.getattr != dispatcher.getattr  # may set per-reply timeouts ...
    operations.init("/")
    assert operations.getattr == dispatcher.getattr  # ... but there are none on libfuse 2
    assert operations.write is None  # not implemented, so not registered


def test_without_routes_operations_hand_on_to_the_store_directly() -> None:
    dispatcher = FileSystem().dispatcher()
    operations = adapter_class(dispatcher, "mfusepy", xattrs=True, trace=False)(dispatcher)
    store = dispatcher.store
    registered = {name for name in dispatcher.store_operations() if getattr(operations, name)}
    assert {"getattr", "read", "release", "find_xattr"} <= registered
    for name in registered - {"getattr"}:
        assert getattr(operations, name) == getattr(store, name), name
    assert operations.getattr != store.getattr  # may set per-reply timeouts ...
    assert operations.write == dispatcher.write  # the dispatcher does more than hand on
    operations.init("/")
    assert operations.getattr == store.getattr  # ... but there are none on libfuse 2

    routed = small_filesystem().dispatcher()
    operations = adapter_class(routed, "mfusepy", xattrs=True, trace=False)(routed)
    assert operations.read == routed.read


def test_traced_operations_stay_traced() -> None:
    lines: list[str] = []
    dispatcher = FakeDispatcher()
    operations = operations_class(dispatcher, trace=lines.append)(dispatcher)  # type: ignore[arg-type]
    operations.init("/")
    assert operations.read("/a.txt", 3, 0, 0) == b"abc"
    assert operations.getattr("/a.txt")["st_size"] == 3
    assert [line.split()[0] for line in lines] == ["read", "getattr"]


def test_trace_wraps_and_reports() -> None:
    lines: list[str] = []
    adapter = operations_class(FakeDispatcher(), trace=lines.append)  # type: ignore[arg-type]
    operations = adapter(FakeDispatcher())  # type: ignore[arg-type]
    assert operations.getattr("/a.txt") == {"st_mode": 0o100444, "st_size": 3}
    with pytest.raises(FileNotFoundError):
        operations.getattr("/missing")
    with pytest.raises(ValueError):
        operations.getattr("/bug")
    assert lines[0].split()[:2] == ["getattr", "/a.txt"]
    assert "/<name> {name='/a.txt'}" in lines[0]
    assert "-> mode=0o100444 size=3" in lines[0]
    assert lines[0].endswith("µs")
    assert "-> ENOENT" in lines[1]
    assert "-> EIO (ValueError: escaped the dispatcher)" in lines[2]


def test_escaping_exceptions_meet_the_errno_boundary(caplog: pytest.LogCaptureFixture) -> None:
    fs = FileSystem()

    @fs.route("/routed")
    class Routed(Resource):
        pass

    fuse = SimpleNamespace(operations=SimpleNamespace(dispatcher=fs.dispatcher()))

    def fgetattr(path: bytes) -> None:
        raise ValueError("escaped")

    def read(path: bytes) -> None:
        raise SystemExit(3)  # a filesystem's code calling sys.exit(): the mount lives on

    def missing(path: bytes) -> None:
        raise FileNotFoundError("gone")  # no errno: its class stands for ENOENT

    def no_errno(path: bytes) -> None:
        raise OSError("no errno")

    def init(path: bytes) -> None:
        raise ValueError("not started")

    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert guarded_call(fuse, fgetattr, b"/routed") == -errno.EIO
        assert guarded_call(fuse, read, b"/stored") == -errno.EIO
        assert guarded_call(fuse, missing, b"/x") == -errno.ENOENT
        assert guarded_call(fuse, no_errno, None) == -errno.EIO
        assert guarded_call(fuse, lambda path: None, b"/") == 0
        assert guarded_call(fuse, lambda: 7) == 7
        with pytest.raises(ValueError, match="not started"):
            guarded_call(fuse, init, b"/")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "getattr /routed (route /routed (Routed)) raised ValueError; answering EIO",
        "read /stored (store) raised SystemExit; answering EIO",
        "no_errno None (store) raised OSError; answering EIO",
    ]


@pytest.mark.parametrize("single_threaded", [True, False], ids=["one-thread", "threads"])
def test_context_reads_libfuse_context_per_request(single_threaded: bool) -> None:
    # Stands in for fuse_get_context(): NULL before the first request, then the serving
    # thread's struct, which libfuse refills before each request.
    current = FuseContext(uid=1000, gid=100, pid=4242, umask=0o022)
    answers = [ctypes.POINTER(FuseContext)(), ctypes.pointer(current)]
    asked: list[int] = []

    def get() -> Any:
        asked.append(1)
        return answers[min(len(asked), 2) - 1]

    context = context_function(get, single_threaded=single_threaded)
    with pytest.raises(ValueError, match="NULL"):
        context()
    assert context() == Context(1000, 100, 4242, 0o022)
    assert type(context()) is Context
    current.uid, current.gid, current.pid, current.umask = 0, 0, 7, 0o077
    assert context() == Context(0, 0, 7, 0o077)
    assert len(asked) == 2  # once per thread, until it answers
    other: list[Context] = []
    thread = threading.Thread(target=lambda: other.append(context()))
    thread.start()
    thread.join()
    assert other == [Context(0, 0, 7, 0o077)]
    # The threaded loop's other worker threads have structs of their own.
    assert len(asked) == (2 if single_threaded else 3)


def test_is_mounted() -> None:
    assert is_mounted("/")
    assert not is_mounted("/definitely/not/a/mount/point")


def test_mounted_refuses_bad_mountpoints(tmp_path: Path) -> None:
    fs = FileSystem()
    with (
        pytest.raises(MountError, match="does not exist"),
        mounted(fs, tmp_path / "missing"),
    ):
        pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(MountError, match="is not a directory"),
        mounted(fs, tmp_path / "file"),
    ):
        pass
