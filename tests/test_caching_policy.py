"""The cache policy's own parts, in-process: the names of hard-linked files."""

from __future__ import annotations

import stat

from defuse2.caching import AUTO_INVAL_DATA, HANDLE_KILLPRIV_V2, HardLinks, negotiate
from defuse2.store.memory import MemoryStore


def attributes(ino: int, nlink: int, mode: int = stat.S_IFREG | 0o644) -> dict[str, int]:
    return {"st_ino": ino, "st_nlink": nlink, "st_mode": mode}


def test_a_change_through_one_name_invalidates_the_others() -> None:
    forgotten: list[str] = []
    links = HardLinks(forgotten.append)
    links.saw("/a", attributes(7, 3))
    links.saw("/b", attributes(7, 3))
    links.saw("/c", attributes(7, 3))
    links.changed("/b")
    assert sorted(forgotten) == ["/a", "/c"]


def test_files_with_one_name_and_directories_are_not_kept() -> None:
    forgotten: list[str] = []
    links = HardLinks(forgotten.append)
    links.saw("/file", attributes(1, 1))
    links.saw("/dir", attributes(2, 5, stat.S_IFDIR | 0o755))
    links.saw(None, attributes(3, 2))
    assert links.names == {}
    links.changed("/file")
    links.changed(None)
    assert forgotten == []


def test_a_name_seen_again_with_one_link_or_another_inode_is_moved() -> None:
    forgotten: list[str] = []
    links = HardLinks(forgotten.append)
    links.saw("/a", attributes(7, 2))
    links.saw("/b", attributes(7, 2))
    links.saw("/b", attributes(8, 1))  # /b is another file now
    links.changed("/a")
    assert forgotten == []
    links.saw("/b", attributes(9, 2))
    links.saw("/c", attributes(9, 2))
    links.changed("/c")
    assert forgotten == ["/b"]
    assert links.names == {"/a": 7, "/b": 9, "/c": 9}


class Conn:
    """The fields of libfuse 3's ``struct fuse_conn_info`` that ``init`` chooses."""

    def __init__(self, capable: int, want: int) -> None:
        self.capable, self.want = capable, want


class HostDirectory:
    """A store whose files other processes may change, which clears no privileges."""


def test_an_exclusive_store_turns_automatic_data_invalidation_off() -> None:
    conn = Conn(AUTO_INVAL_DATA, AUTO_INVAL_DATA | 1)
    negotiate(conn, MemoryStore())
    assert conn.want == 1
    conn = Conn(AUTO_INVAL_DATA, AUTO_INVAL_DATA | 1)
    negotiate(conn, HostDirectory())
    assert conn.want == AUTO_INVAL_DATA | 1


def test_a_store_that_clears_privileges_takes_the_duty_over_where_offered() -> None:
    conn = Conn(HANDLE_KILLPRIV_V2, 0)
    negotiate(conn, MemoryStore())
    assert conn.want == HANDLE_KILLPRIV_V2
    conn = Conn(0, 0)
    negotiate(conn, MemoryStore())
    assert conn.want == 0
    conn = Conn(HANDLE_KILLPRIV_V2, 0)
    negotiate(conn, HostDirectory())
    assert conn.want == 0


def test_libfuse2_configuration_is_looked_for_only_in_libfuse_2_9() -> None:
    from defuse2.libfuse2_config import find_config

    class Library:
        def fuse_version(self) -> int:
            return 314

    assert find_config(Library(), entry=1.0, negative=0.0, attr=1.0) is None
