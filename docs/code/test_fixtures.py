"""Testing with the defuse2 pytest plugin: the code of the "Testing" how-to.

Run it like any test file: ``python -m pytest docs/code/test_fixtures.py``.
"""

import errno

import pytest

from defuse2 import FileSystem


def make_filesystem():
    fs = FileSystem(quota="1 MiB")

    @fs.file("/motd")
    def motd():
        return "Welcome!\n"

    return fs


@pytest.fixture
def defuse2_filesystem():
    """Replace the plugin's default (a bare FileSystem) with the one under test."""
    return make_filesystem()


def test_motd(defuse2_client):
    assert defuse2_client.read_text("/motd") == "Welcome!\n"
    assert defuse2_client.stat("/motd").st_size == 9


def test_motd_is_read_only(defuse2_client):
    with pytest.raises(OSError) as exc:
        defuse2_client.write_text("/motd", "changed")
    assert exc.value.errno == errno.EROFS


def test_unrouted_paths_are_stored(defuse2_client):
    defuse2_client.makedirs("/a/b")
    defuse2_client.write_text("/a/b/c.txt", "kept")
    assert sorted(defuse2_client.listdir("/")) == ["a", "motd"]


@pytest.mark.mount
def test_motd_mounted(defuse2_mount):
    assert (defuse2_mount / "motd").read_text() == "Welcome!\n"


@pytest.mark.mount(binding="fusepy", trace=True)
def test_motd_on_fusepy_traced(defuse2_mount):
    """The marker chooses the binding, and traces the callbacks (shown if it fails)."""
    assert (defuse2_mount / "motd").read_text() == "Welcome!\n"
