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
from defuse2.errors import DefuseError, errno_for, errno_of
from raising_app import RAISED, make_filesystem

KINDS = sorted(RAISED)


def errno_from(call, *args) -> int | None:
    try:
        call(*args)
    except OSError as exc:
        return exc.errno
    return None


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
        assert sorted(os.listdir(root)) == ["routed", "still-serving"]
        log = mount.output()
    for kind in KINDS:
        if RAISED[kind][2] == errno.EIO:
            raised = RAISED[kind][0].__name__
            assert (
                f"getattr /routed/{kind} (route /routed/<kind> (Raising)) raised {raised}; "
                "answering EIO" in log
            )
            assert f"getattr /stored-{kind} (store) raised {raised}; answering EIO" in log


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
