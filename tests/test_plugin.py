"""The pytest plugin, used as a user's project uses it: no conftest, strict markers.

Each test writes a small project into a temporary directory (one test file, a
``pytest.ini`` with nothing of defuse2 in it) and runs pytest on it in a subprocess, under
``--strict-markers -W error``, with and without ``CI=true`` in the environment, and with
FUSE made unusable (no ``fusermount3`` on the ``PATH``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = """
    import os
    import sys

    import pytest
    from defuse2 import FileSystem


    @pytest.fixture
    def defuse2_filesystem():
        fs = FileSystem(quota="1 MiB")

        @fs.file("/motd")
        def motd():
            return "hi\\n"

        return fs


    def test_client(defuse2_client):
        assert defuse2_client.read_text("/motd") == "hi\\n"
        defuse2_client.write_text("/notes", "x")
        assert sorted(defuse2_client.listdir("/")) == ["motd", "notes"]


    @pytest.mark.mount
    def test_mount(defuse2_mount):
        assert os.path.ismount(defuse2_mount)
        assert (defuse2_mount / "motd").read_text() == "hi\\n"
        (defuse2_mount / "notes").write_text("y")
        assert sorted(os.listdir(defuse2_mount)) == ["motd", "notes"]


    @pytest.mark.mount(binding="fusepy", trace=True)
    def test_fusepy_traced(defuse2_mount, caplog):
        assert (defuse2_mount / "motd").read_text() == "hi\\n"
        assert "fuse" in sys.modules  # fusepy's module: the marker chose the binding
        reads = [r for r in caplog.records if r.getMessage().startswith("read       /motd")]
        assert {(r.name, r.levelname) for r in reads} == {("defuse2.trace", "INFO")}
        assert "-> 3 bytes" in reads[0].getMessage()


    def test_no_mount_needed():
        assert True
"""


def run_user_project(tmp_path: Path, *options: str, **environment: str) -> str:
    """Run pytest on the user's project; the last line it printed (its summary)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    (project / "pytest.ini").write_text("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "--strict-markers", "-W", "error"]
    command += ["-p", "no:cacheprovider", "-q", *options]
    if not entry_points(group="pytest11", name="defuse2"):  # a checkout, not installed
        command += ["-p", "defuse2.testing"]
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(environment)
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    assert lines, f"pytest printed nothing (status {done.returncode})"
    return lines[-1]


def no_fusermount(tmp_path: Path) -> str:
    """A ``PATH`` without ``fusermount3``: FUSE cannot be used through it."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def summary(line: str) -> dict[str, int]:
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", line)}


@pytest.mark.mount
@pytest.mark.parametrize("ci", ["", "true"])
def test_a_project_without_conftest_mounts(tmp_path: Path, ci: str) -> None:
    line = run_user_project(tmp_path, **({"CI": ci} if ci else {}))
    assert summary(line) == {"passed": 4}, line


def test_without_fuse_mount_tests_skip_even_in_ci(tmp_path: Path) -> None:
    line = run_user_project(tmp_path, PATH=no_fusermount(tmp_path), CI="true")
    assert summary(line) == {"passed": 2, "skipped": 2}, line


def test_a_project_can_require_fuse_in_ci(tmp_path: Path) -> None:
    path = no_fusermount(tmp_path)
    required = ("-o", "defuse2_require_fuse=ci")
    line = run_user_project(tmp_path, *required, PATH=path, CI="true")
    assert summary(line) == {"errors": 2, "passed": 2}, line  # failed in setup
    line = run_user_project(tmp_path, *required, PATH=path)  # not in CI: skipped
    assert summary(line) == {"passed": 2, "skipped": 2}, line


def test_a_bad_policy_is_a_usage_error(tmp_path: Path) -> None:
    line = run_user_project(tmp_path, "-o", "defuse2_require_fuse=sometimes")
    assert "defuse2_require_fuse = 'sometimes': choose one of no, ci, yes" in line
