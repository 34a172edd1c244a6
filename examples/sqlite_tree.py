"""A SQLite database as a tree: tables are directories, rows are JSON files.

Teaches views over data that lives somewhere else: a ``Directory`` whose entries come
from a query, a ``ContentFile`` whose content is rendered on demand, route converters
(``<int:rowid>`` only matches numbers), and one mutating operation, ``unlink``, which
deletes the row (in the demo database; a database of yours is opened read-only).
Writing or renaming a row fails with ``EROFS``.

Set ``DEFUSE2_SQLITE_DB`` to the path of a database; without it a small demo database
is built in memory. Run it::

    python examples/sqlite_tree.py /tmp/m --foreground
    cat /tmp/m/users/1.json
"""

import errno
import json
import os
import sqlite3
import threading

from defuse2 import ContentFile, Directory, FileSystem

fs = FileSystem(quota="1 MiB")


def connect(path=None):
    """Open the database at ``path``, or build the in-memory demo database."""
    if path:
        uri = "file:" + os.path.abspath(path) + "?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.executescript("""
        CREATE TABLE users (name TEXT, email TEXT);
        INSERT INTO users VALUES ('ada', 'ada@example.org'), ('linus', 'linus@example.org');
        CREATE TABLE notes (user INTEGER, body TEXT);
        INSERT INTO notes VALUES (1, 'Hello from SQLite');
    """)
    return db


DB_PATH = os.environ.get("DEFUSE2_SQLITE_DB")
db = connect(DB_PATH)
writable = not DB_PATH  # only the demo database may lose rows
lock = threading.Lock()  # with -o threads, calls arrive on many threads; one connection serves them


def query(sql, *params):
    with lock:
        cursor = db.execute(sql, params)
        return cursor.description, cursor.fetchall()


def table_names():
    _, rows = query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [name for (name,) in rows]


def checked(table):
    """The table name quoted for SQL, or ``ENOENT`` if there is no such table."""
    if table not in table_names():
        raise FileNotFoundError(table)
    return '"' + table.replace('"', '""') + '"'


@fs.route("/")
class Tables(Directory):
    def entries(self):
        return table_names()


@fs.route("/<table>")
class Rows(Directory):
    def getattr(self, table):
        checked(table)  # ENOENT for a table that does not exist
        return super().getattr()

    def entries(self, table):
        _, rows = query(f"SELECT rowid FROM {checked(table)} ORDER BY rowid")
        return [f"{rowid}.json" for (rowid,) in rows]


@fs.route("/<table>/<int:rowid>.json")
class Row(ContentFile):
    dynamic = True  # follows data that changes elsewhere: never cache it

    def content(self, table, rowid):
        columns, rows = query(f"SELECT * FROM {checked(table)} WHERE rowid = ?", rowid)
        if not rows:
            raise FileNotFoundError(rowid)
        record = {column[0]: value for column, value in zip(columns, rows[0], strict=True)}
        return json.dumps(record, indent=2, default=bytes.hex) + "\n"

    def unlink(self, table, rowid):
        if not writable:
            raise OSError(errno.EROFS, "database opened read-only")
        self.content(table, rowid)  # ENOENT for a missing row
        sql = f"DELETE FROM {checked(table)} WHERE rowid = ?"
        with lock:
            db.execute(sql, (rowid,))
            db.commit()


if __name__ == "__main__":
    fs.main()
