"""The cache policy's own parts, in-process: the names of hard-linked files."""

from __future__ import annotations

import stat

from defuse2.caching import AUTO_INVAL_DATA, HANDLE_KILLPRIV_V2, HardLinks, negotiate


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


def test_negotiate_turns_automatic_data_invalidation_off() -> None:
    class Conn:
        want = AUTO_INVAL_DATA | 1
        capable = AUTO_INVAL_DATA

    conn = Conn()
    negotiate(conn)
    assert conn.want == 1


def test_negotiate_takes_over_clearing_privileges_where_offered() -> None:
    class Conn:
        want = 0
        capable = HANDLE_KILLPRIV_V2

    conn = Conn()
    negotiate(conn)
    assert conn.want == HANDLE_KILLPRIV_V2
    conn.capable = conn.want = 0
    negotiate(conn)
    assert conn.want == 0
