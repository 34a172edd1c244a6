"""The operation table: the adapter, the dispatcher, the docs and the defaults follow it."""

from __future__ import annotations

import errno
import inspect
import logging
import os
from pathlib import Path

import pytest

from defuse2 import FileSystem, Resource, attributes, generate
from defuse2.adapter import OPERATIONS as REGISTERED
from defuse2.adapter import Operations
from defuse2.dispatch import Dispatcher
from defuse2.generate import OUTPUTS
from defuse2.operations import ARGUMENTS, OPERATIONS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_what_is_generated_from_the_table_is_current(output: str) -> None:
    generated = getattr(generate, OUTPUTS[output])()
    assert (ROOT / output).read_text() == generated, (
        f"{output} is out of date: run python -m defuse2.generate"
    )


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_adapter_and_dispatcher_take_the_table_arguments(op: str) -> None:
    assert op in REGISTERED
    for cls in (Operations, Dispatcher):
        names = list(inspect.signature(getattr(cls, op)).parameters)[1:]
        if OPERATIONS[op].routed_by == "path":
            assert names[0] == "path", (cls, op)
            names = names[1:]
        assert tuple(names[: len(ARGUMENTS[op])]) == ARGUMENTS[op], (cls, op)
        assert set(names[len(ARGUMENTS[op]) :]) <= {"position"}  # xattr's macOS extra


# -- what a resource that lacks an operation answers --------------------------------------

#: Arguments for each operation on the path "/f" (or "/f" -> "/g").
CALLS: dict[str, tuple[object, ...]] = {
    "getattr": ("/f",),
    "readlink": ("/f",),
    "mknod": ("/f", 0o100644, 0),
    "mkdir": ("/f", 0o755),
    "unlink": ("/f",),
    "rmdir": ("/f",),
    "symlink": ("/f", "target"),
    "rename": ("/f", "/g", 0),
    "link": ("/f", "/g"),
    "chmod": ("/f", 0o600),
    "chown": ("/f", -1, -1),
    "truncate": ("/f", 0),
    "open": ("/f", os.O_RDONLY),
    "read": ("/f", 10, 0, 0),
    "write": ("/f", b"x", 0, 0),
    "statfs": ("/f",),
    "flush": ("/f", 0),
    "release": ("/f", 0),
    "fsync": ("/f", 0, 0),
    "setxattr": ("/f", "user.a", b"1", 0),
    "getxattr": ("/f", "user.a"),
    "listxattr": ("/f",),
    "removexattr": ("/f", "user.a"),
    "opendir": ("/f",),
    "readdir": ("/f", 0),
    "releasedir": ("/f", 0),
    "access": ("/f", os.R_OK),
    "create": ("/f", 0o100644, os.O_WRONLY),
    "utimens": ("/f", None),
    "fallocate": ("/f", 0, 0, 10, 0),
}


def answer(dispatcher: Dispatcher, op: str) -> int:
    """The errno the call of ``op`` fails with, or 0."""
    try:
        getattr(dispatcher, op)(*CALLS[op])
    except OSError as exc:
        return exc.errno or -1
    return 0


def test_every_operation_has_a_call() -> None:
    assert set(CALLS) == set(OPERATIONS)


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_a_read_only_resource_lacking_an_operation(op: str) -> None:
    fs = FileSystem()
    fs.add_route("/f", type("Empty", (Resource,), {}))
    fs.add_route("/g", type("Other", (Resource,), {}))
    expected = OPERATIONS[op].missing_errno
    if op == "read":
        expected = errno.ENOTSUP  # derived: a file that cannot be read
    if op in ("readdir", "opendir"):
        expected = errno.ENOTDIR  # derived: a file, not a directory
    assert errno.errorcode.get(answer(fs.dispatcher(), op)) == errno.errorcode.get(expected)


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_a_writable_resource_lacking_an_operation(op: str) -> None:
    fs = FileSystem()

    class Writable(Resource):
        def getattr(self):
            return attributes.file(size=0, mode=0o644)

        def write(self, data, offset):
            return None

    fs.add_route("/f", Writable)
    fs.add_route("/g", Writable)
    if op == "write":
        return  # it has it
    row = OPERATIONS[op]
    expected = 0 if row.kept else (row.writable_missing_errno or row.missing_errno)
    if op == "read":
        expected = errno.ENOTSUP
    if op in ("readdir", "opendir"):
        expected = errno.ENOTDIR
    assert errno.errorcode.get(answer(fs.dispatcher(), op)) == errno.errorcode.get(expected)


# -- return values checked against the table ------------------------------------------------

BAD_RETURNS = [
    ("write", "write", lambda: -1, ("/bad", b"abc", 0, 0), "(0 to 3), not -1"),
    ("write", "write", lambda: 4, ("/bad", b"abc", 0, 0), "(0 to 3), not 4"),
    ("write", "write", lambda: "3", ("/bad", b"abc", 0, 0), "not '3'"),
    ("getattr", "getattr", lambda: {"st_mode": 0o100644, "st_size": 2**70}, ("/bad",),
     f"st_size={2**70}: out of range"),
    ("getattr", "getattr", lambda: attributes.file(size=-1), ("/bad",),
     "st_size=-1: a size is never negative"),
    ("getattr", "getattr", lambda: {"st_mode": 0o100644, "st_size": "12"}, ("/bad",),
     "st_size='12': an int, not str"),
    ("getattr", "getattr", lambda: attributes.file(size=1.5), ("/bad",),  # type: ignore[arg-type]
     "st_size=1.5: an int, not float"),
    ("getattr", "getattr", lambda: {"st_mode": -1}, ("/bad",), "st_mode=-1: out of range"),
    ("getattr", "getattr", lambda: {"st_mode": 0o644}, ("/bad",), "st_mode=0o644, which has no"),
    ("getattr", "getattr", lambda: {"st_mode": 0o100644, "st_nlink": 2**40}, ("/bad",),
     f"st_nlink={2**40}: out of range"),
    ("getattr", "getattr", lambda: 7, ("/bad",), "must return Attributes or a mapping"),
    ("open", "open", lambda: "fh", ("/bad", os.O_RDONLY), "not 'fh'"),
    ("open", "open", lambda: -2, ("/bad", os.O_RDONLY), "not -2"),
    ("create", "create", lambda: 2**64, ("/bad", 0o100644, os.O_WRONLY), f"not {2**64}"),
    ("opendir", "opendir", lambda: 1.0, ("/bad",), "not 1.0"),
    ("readlink", "readlink", lambda: 3, ("/bad",), "must return str"),
    ("readdir", "readdir", lambda: ["a/b"], ("/bad", 0), "entries are names without '/'"),
    ("read", "read", lambda: 3, ("/bad", 10, 0, 0), "must return bytes or str"),
    ("statfs", "statfs", lambda: {"f_blocks": -1}, ("/bad",), "f_* fields to ints"),
    ("getxattr", "getxattr", lambda: 5, ("/bad", "user.a"), "must return bytes or str"),
    ("listxattr", "listxattr", lambda: [b"user.a"], ("/bad",), "attribute names are"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "method", "value", "args", "said"),
    BAD_RETURNS,
    ids=[f"{row[0]}-{index}" for index, row in enumerate(BAD_RETURNS)],
)
def test_a_bad_return_value_is_eio_and_logged(
    op: str, method: str, value, args, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FileSystem()
    methods = {method: lambda self: value()}
    if op != "getattr":
        methods["getattr"] = lambda self: attributes.file(size=3, mode=0o644)
    fs.add_route("/bad", type("Bad", (Resource,), methods))
    with caplog.at_level(logging.ERROR, logger="defuse2"):
        if op == "getattr":  # as the kernel asks: some values are refused on the way out
            assert answer_of(fs.test_client(), "stat", args) == errno.EIO
        else:
            assert answer_of(fs.dispatcher(), op, args) == errno.EIO
    line = caplog.records[-1].getMessage()
    assert line.startswith(f"{op} /bad (route /bad (Bad)): "), line
    assert said in line, line


def answer_of(target: object, op: str, args: tuple[object, ...]) -> int:
    try:
        getattr(target, op)(*args)
    except OSError as exc:
        return exc.errno or -1
    return 0
