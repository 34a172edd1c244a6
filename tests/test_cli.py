"""The ``defuse2`` command: routes, match, examples, mount options, and bad targets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import defuse2
import defuse2.mount
from defuse2 import FileSystem
from defuse2.cli import TargetError, examples, load_target, main, run_script

APP = textwrap.dedent(
    '''
    """An app for the CLI tests."""
    from defuse2 import FileSystem, Resource, attributes

    fs = FileSystem()
    other = FileSystem()
    not_a_filesystem = 42

    def create_fs(quota="1 MiB"):
        made = FileSystem(quota=quota)
        made.made_with = quota
        return made

    def needs_arguments(name):
        return FileSystem()

    def make_text():
        return "text"

    @fs.route("/")
    class Root(Resource):
        def readdir(self):
            return ["motd"]

    @fs.route("/users/<name>/profile.json")
    class Profile(Resource):
        def getattr(self, name):
            return attributes.file(size=2)

        def read(self, size, offset, name):
            return b"{}"

    @fs.file("/motd")
    def motd():
        return "hello\\n"
    '''
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "cli_app.py"
    path.write_text(APP)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "defuse2", *args], capture_output=True, text=True, timeout=60
    )


# -- loading a target ----------------------------------------------------------------------


def test_load_target_from_a_file_with_default_attribute(app: Path) -> None:
    assert isinstance(load_target(str(app)), FileSystem)
    assert load_target(f"{app}:other") is not load_target(f"{app}:fs")


def test_load_target_calls_a_factory(app: Path, tmp_path: Path) -> None:
    assert load_target(f"{app}:create_fs").made_with == "1 MiB"  # type: ignore[attr-defined]
    assert load_target(f"{app}:create_fs()").made_with == "1 MiB"  # type: ignore[attr-defined]
    made = load_target(f'{app}:create_fs(quota="2 MiB")')
    assert made.made_with == "2 MiB"  # type: ignore[attr-defined]
    factory_only = tmp_path / "factory_only.py"
    factory_only.write_text(
        "from defuse2 import FileSystem\ndef create_fs():\n    return FileSystem()\n"
    )
    assert isinstance(load_target(str(factory_only)), FileSystem)  # no fs: create_fs()


def test_load_target_from_a_module(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(app.parent))
    assert isinstance(load_target("cli_app:fs"), FileSystem)
    assert isinstance(load_target("cli_app"), FileSystem)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":nope", "has no attribute 'nope'"),
        (":not_a_filesystem", "is an int, not a FileSystem or a function that returns one"),
        (":Root", "is a class, not a FileSystem"),
        (":needs_arguments", "calling .* failed: TypeError"),
        (":make_text", "returned a str, not a FileSystem"),
        (":create_fs(open('x'))", "not a call with literal arguments"),
        (":create_fs(", "not a call with literal arguments"),
        (":1x", "is not a Python name"),
    ],
)
def test_load_target_errors(app: Path, suffix: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        load_target(f"{app}{suffix}")


def test_load_target_missing_module_and_file(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no module named 'no_such_module_xyz'"):
        load_target("no_such_module_xyz:fs")
    with pytest.raises(TargetError, match="no such file"):
        load_target(f"{tmp_path}/missing.py:fs")


def test_load_target_reports_an_import_error_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad setup')\n")
    with pytest.raises(TargetError, match="importing .* failed: RuntimeError: bad setup"):
        load_target(str(broken))


@pytest.mark.parametrize(
    "target", ["no_such_module_xyz:fs", "/no/such/file.py:fs", "defuse2.cli:main"]
)
def test_bad_target_is_a_one_line_error_with_status_2(target: str) -> None:
    result = run("routes", target)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("defuse2: error: ")


# -- routes and match ----------------------------------------------------------------------


def test_routes_table(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["routes", str(app)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Rule", "Resource", "Operations"]
    assert set(lines[1]) <= {"-", " "}
    table = {line.split()[0]: line for line in lines[2:]}
    assert "Profile" in table["/users/<name>/profile.json"]
    assert "getattr, read" in table["/users/<name>/profile.json"]
    assert "readdir" in table["/"]
    assert "motd" in table["/motd"]
    assert "(implied)" in table["/users"]


def test_match_a_route(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["match", str(app), "/users/ann/profile.json"])
    assert capsys.readouterr().out.split() == [
        "/users/<name>/profile.json",
        "Profile",
        "name='ann'",
    ]


def test_match_the_store(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["match", str(app), "/notes/todo.txt"])
    assert capsys.readouterr().out == "store\n"


def test_match_needs_an_absolute_path(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["match", str(app), "notes"])
    assert exc.value.code == 2
    assert "must be absolute" in capsys.readouterr().err


# -- examples ------------------------------------------------------------------------------


def test_examples_lists_each_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    listed = examples()
    assert "hello" in listed
    assert listed["hello"].startswith("Hello, FUSE")
    main(["examples"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(listed)
    assert any(line.split()[0] == "hello" and "Hello, FUSE" in line for line in lines)


def test_examples_run_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["examples", "run", "no_such_example", "/tmp"])
    assert exc.value.code == 2
    assert "no example named 'no_such_example'" in capsys.readouterr().err


# -- mount options reach fs.mount ----------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Replace the real mount: record what it was asked to do."""
    calls: dict[str, Any] = {}

    def fake_mount(filesystem: FileSystem, mountpoint: str, **kwargs: Any) -> None:
        calls.update(filesystem=filesystem, mountpoint=mountpoint, **kwargs)

    monkeypatch.setattr(defuse2.mount, "mount", fake_mount)
    # Restored (or removed) afterwards, whatever the command sets it to.
    monkeypatch.setenv("DEFUSE2_LIBFUSE", os.environ.get("DEFUSE2_LIBFUSE", "3"))
    loggers = [logging.getLogger(name) for name in ("defuse2", "defuse2.trace")]
    before = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield calls
    for logger, (handlers, level, propagate) in zip(loggers, before, strict=True):
        for handler in set(logger.handlers) - set(handlers):
            handler.close()
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_run_script_passes_every_option(captured: dict[str, Any]) -> None:
    fs = FileSystem()
    run_script(
        fs,
        ["/mnt/x", "-o", "allow_other,max_read=4096", "-o", "ro", "--binding", "fusepy"],
    )
    assert captured["filesystem"] is fs
    assert captured["mountpoint"] == "/mnt/x"
    assert captured["foreground"] is True  # the default, as for fs.mount()
    assert captured["trace"] is False
    assert captured["binding"] == "fusepy"
    assert captured["allow_other"] is True
    assert captured["max_read"] == "4096"
    assert captured["ro"] is True


def test_trace_prints_in_the_foreground(
    captured: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    run_script(FileSystem(), ["/mnt/x", "--trace"])
    assert captured["foreground"] is True
    assert captured["trace"] is True
    capsys.readouterr()
    logging.getLogger("defuse2.trace").info("getattr / -> ok")  # what a traced call emits
    assert capsys.readouterr().err == "getattr / -> ok\n"  # the line alone, once


def test_daemon_mode_and_unchecked_options(captured: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "fs.log"
    run_script(
        FileSystem(),
        ["/mnt/x", "--daemon", "--log", str(log), "--trace", "--unchecked-option", "new=1"],
    )
    assert captured["foreground"] is False
    assert captured["unchecked_options"] == {"new": "1"}
    assert captured["trace"] is True
    logging.getLogger("defuse2.trace").info("getattr / -> ok")  # the trace goes to the log file
    assert " INFO defuse2.trace: getattr / -> ok\n" in log.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--daemon", "--trace"], "--trace with --daemon needs --log FILE"),
        (["--daemon", "--foreground"], "not both"),
        (["--log", "/no/such/dir/x.log"], "cannot open the log file"),
    ],
)
def test_mount_argument_mistakes(
    argv: list[str], message: str, captured: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        run_script(FileSystem(), ["/mnt/x", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not captured  # nothing was mounted


def test_mount_command_sets_the_libfuse_major(app: Path, captured: dict[str, Any]) -> None:
    main(["mount", str(app), "/mnt/x", "-f", "--libfuse", "2"])
    assert captured["foreground"] is True
    assert os.environ["DEFUSE2_LIBFUSE"] == "2"


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"defuse2 {defuse2.__version__} (mfusepy ")


def test_module_entry_point_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("mount", "umount", "routes", "match", "examples"):
        assert command in result.stdout
