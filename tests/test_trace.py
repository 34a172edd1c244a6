"""The trace is logging: one ``INFO`` record of ``defuse2.trace`` per callback, printed on
stderr by defuse2 itself only while nothing else would receive it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from defuse2 import FileSystem
from defuse2.adapter import Operations, operations_class
from defuse2.trace import logger, logging_on


def motd_filesystem() -> FileSystem:
    fs = FileSystem()

    @fs.file("/motd")
    def motd() -> str:
        return "hi\n"

    return fs


def traced_operations(fs: FileSystem) -> Operations:
    dispatcher = fs.dispatcher()
    operations = operations_class(dispatcher, trace=True)(dispatcher)
    operations.init("/")
    return operations


@contextlib.contextmanager
def unconfigured() -> Iterator[None]:
    """Logging as a script has it: no handler anywhere (pytest's are put back after)."""
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, []
    try:
        yield
    finally:
        root.handlers = handlers
    assert not logger.handlers and logger.level == logging.NOTSET  # logging_on undid all


def test_a_trace_line_is_an_info_record(caplog: pytest.LogCaptureFixture) -> None:
    operations = traced_operations(motd_filesystem())
    with logging_on():
        operations.getattr("/motd")
        with pytest.raises(FileNotFoundError):
            operations.getattr("/nope")
    assert [(r.name, r.levelno) for r in caplog.records] == [("defuse2.trace", logging.INFO)] * 2
    first, second = (record.getMessage() for record in caplog.records)
    assert first.startswith("getattr    /motd") and "-> mode=0o100444 size=3" in first
    assert second.startswith("getattr    /nope") and "-> ENOENT" in second


def test_without_a_handler_the_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    operations = traced_operations(motd_filesystem())
    with unconfigured(), logging_on():
        operations.getattr("/motd")
        operations.read("/motd", 10, 0, 0)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in lines] == [["getattr", "/motd"], ["read", "/motd"]]
    assert lines[1].endswith(" µs") and "-> 3 bytes" in lines[1]


def test_the_stderr_handler_stays_while_any_traced_mount_serves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with unconfigured():
        with logging_on():
            with logging_on():
                logger.info("a")
            logger.info("b")  # the inner mount ended; the outer one still prints
        logger.info("c")  # no traced mount: level and handler are back as they were
    assert capsys.readouterr().err == "a\nb\n"


def test_a_level_above_info_silences_the_trace(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = motd_filesystem()
    operations = traced_operations(fs)
    described: list[str] = []
    monkeypatch.setattr(type(operations.dispatcher), "describe", described.append)
    monkeypatch.setattr(logger, "level", logging.WARNING)
    with logging_on():
        assert operations.read("/motd", 10, 0, 0) == b"hi\n"
    assert caplog.records == [] and described == []  # not even formatted
    assert logger.level == logging.WARNING  # a level chosen for the logger is kept


def test_a_callable_receives_the_lines_instead(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[str] = []
    dispatcher = motd_filesystem().dispatcher()
    operations = operations_class(dispatcher, trace=lines.append)(dispatcher)
    operations.init("/")
    operations.getattr("/motd")
    assert [line.split()[0] for line in lines] == ["getattr"]
    assert caplog.records == []


@pytest.mark.mount
def test_a_traced_mount_logs_each_callback(
    mountpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="defuse2.trace")
    with motd_filesystem().mounted(mountpoint, trace=True) as root:
        assert (root / "motd").read_text() == "hi\n"
        with pytest.raises(FileNotFoundError):
            os.stat(Path(root, "nope"))
    messages = [r.getMessage() for r in caplog.records if r.name == "defuse2.trace"]
    assert any(m.startswith("read       /motd") and "-> 3 bytes" in m for m in messages)
    assert any(m.startswith("getattr    /nope") and "-> ENOENT" in m for m in messages)
