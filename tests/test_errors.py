"""The errno boundary: what a resource or a store raises is the same errno everywhere.

A resource and a custom store raise the same builtin exceptions, with and without an
errno; the caller sees one errno for each, through the test client and mounted on every
binding. What carries no errno -- a bug, ``SystemExit``, ``GeneratorExit`` and, mounted,
``KeyboardInterrupt`` -- is ``EIO``, logged with the operation, path and route, and the
mount serves on.
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from conformance.targets import MOUNTS, CliMount
from conformance.targets import errno_of as errno_of_call
from defuse2.errors import DefuseError, errno_for, errno_of
from raising_app import BAD, RAISED, make_filesystem

KINDS = sorted(RAISED)


def errno_from(call, *args) -> int | None:
    """The errno ``call(*args)`` fails with, or None."""
    return errno_of_call(lambda: call(*args))


@pytest.mark.parametrize("kind", KINDS)
def test_client_resource_and_store_answer_alike(kind: str, caplog: pytest.LogCaptureFixture):
    client = make_filesystem().test_client()
    expected = RAISED[kind][2]
    if kind == "keyboardinterrupt":  # in-process it is your Ctrl-C: it goes on up
        for path in ("/routed/keyboardinterrupt", "/stored-keyboardinterrupt"):
            with pytest.raises(KeyboardInterrupt):
                client.stat(path)
        return
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert errno_from(client.stat, f"/routed/{kind}") == expected
        assert errno_from(client.stat, f"/stored-{kind}") == expected
    logged = [record.getMessage() for record in caplog.records]
    if expected == errno.EIO:
        name = RAISED[kind][0].__name__
        assert logged == [
            f"getattr /routed/{kind} (route /routed/<kind> (Raising)) raised {name}; answering EIO",
            f"getattr /stored-{kind} (store) raised {name}; answering EIO",
        ]
    else:
        assert logged == []


@pytest.mark.mount
@pytest.mark.parametrize(("name", "binding", "libfuse"), MOUNTS, ids=[m[0] for m in MOUNTS])
def test_mounted_resource_and_store_answer_alike(name: str, binding: str, libfuse: str):
    mount = CliMount("raising_app:fs", binding, libfuse)
    with mount as root:
        for kind in KINDS:
            expected = RAISED[kind][2]
            assert errno_from(os.stat, f"{root}/routed/{kind}") == expected, kind
            assert errno_from(os.stat, f"{root}/stored-{kind}") == expected, kind
        os.mkdir(f"{root}/still-serving")  # nothing stopped the loop
        assert sorted(os.listdir(root)) == ["bad", "routed", "still-serving"]
        log = mount.output()
    for kind in KINDS:
        if RAISED[kind][2] == errno.EIO:
            raised = RAISED[kind][0].__name__
            assert (
                f"getattr /routed/{kind} (route /routed/<kind> (Raising)) raised {raised}; "
                "answering EIO" in log
            )
            assert f"getattr /stored-{kind} (store) raised {raised}; answering EIO" in log


@pytest.mark.parametrize("kind", sorted(BAD))
def test_client_bad_values_are_eio_and_logged(kind: str, caplog: pytest.LogCaptureFixture):
    client = make_filesystem().test_client()
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        if kind == "write-minus-one":
            fd = client.open(f"/bad/{kind}", os.O_WRONLY)
            assert errno_from(client.write, fd, b"abc") == errno.EIO
            client.close(fd)
        elif kind == "open-text":
            assert errno_from(client.open, f"/bad/{kind}", os.O_RDONLY) == errno.EIO
        else:
            assert errno_from(client.stat, f"/bad/{kind}") == errno.EIO
    line = caplog.records[-1].getMessage()
    assert f"/bad/{kind} (route /bad/<kind> (Bad)): " in line
    assert BAD[kind][1] in line


@pytest.mark.mount
@pytest.mark.parametrize(("name", "binding", "libfuse"), MOUNTS, ids=[m[0] for m in MOUNTS])
def test_mounted_bad_values_are_eio_and_logged(name: str, binding: str, libfuse: str):
    mount = CliMount("raising_app:fs", binding, libfuse)
    with mount as root:
        for kind in sorted(BAD):
            path = f"{root}/bad/{kind}"
            if kind == "write-minus-one":
                fd = os.open(path, os.O_WRONLY)
                try:
                    assert errno_from(os.write, fd, b"abc") == errno.EIO, kind
                finally:
                    os.close(fd)
            elif kind == "open-text":
                assert errno_from(os.open, path, os.O_RDONLY) == errno.EIO, kind
            else:
                assert errno_from(os.stat, path) == errno.EIO, kind
        log = mount.output()
    for kind, (_value, said) in BAD.items():
        assert f"/bad/{kind} (route /bad/<kind> (Bad)): " in log, (kind, log)
        assert said in log, kind


def test_errno_of_builtin_exceptions() -> None:
    assert errno_of(FileNotFoundError("/x")) == errno.ENOENT
    assert errno_of(FileNotFoundError(errno.ENOENT, "x")) == errno.ENOENT
    assert errno_of(OSError(errno.EXDEV, "x")) == errno.EXDEV
    assert errno_of(OSError(errno.EXDEV, "x").__class__("no errno")) is None
    assert errno_of(ValueError("x")) is None
    assert errno_of(DefuseError("x")) is None  # never an errno: a mistake is EIO, logged


def test_errno_for_describes_only_what_it_logs(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[str] = []

    def served_by() -> str:
        asked.append("asked")
        return "route /x"

    assert errno_for(FileNotFoundError("/x"), "getattr", "/x", served_by) == errno.ENOENT
    assert asked == []
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert errno_for(DefuseError("write() must return ..."), "write", "/x", served_by) == 5
    assert asked == ["asked"]
    assert caplog.records[-1].getMessage() == (
        "write /x (route /x): write() must return ...; answering EIO"
    )
    assert caplog.records[-1].exc_info is None  # the message says it all
