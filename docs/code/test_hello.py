"""Testing the tutorial's filesystem: the code of tutorial step 8.

Save it beside ``hello.py`` and run ``python -m pytest test_hello.py``: the defuse2
pytest plugin gives the ``defuse2_client`` and ``defuse2_mount`` fixtures.
"""

import errno
import os
import stat

import pytest
from hello import fs

NAMES = ["test0.txt", "test1.txt", "test2.txt", "test3.txt"]


@pytest.fixture
def defuse2_filesystem():
    """The filesystem the plugin's fixtures test: the one hello.py builds."""
    return fs


def test_hello_client(defuse2_client):
    assert sorted(defuse2_client.listdir("/")) == NAMES
    assert defuse2_client.read_bytes("/test2.txt") == b"test2test2test2test2"
    st = defuse2_client.stat("/test2.txt")
    assert (st.st_size, stat.S_IMODE(st.st_mode)) == (20, 0o444)
    with pytest.raises(OSError) as exc:
        defuse2_client.write_bytes("/test0.txt", b"x")
    assert exc.value.errno == errno.EROFS


@pytest.mark.mount
def test_hello_mounted(defuse2_mount):
    assert sorted(os.listdir(defuse2_mount)) == NAMES
    assert (defuse2_mount / "test2.txt").read_bytes() == b"test2test2test2test2"
