"""A translator: CSV files written under /data appear as JSON under /json.

Teaches views of stored files in another format. ``/data`` is ordinary storage
(the MemoryStore); a ``StoreResource`` stands in front of it to refuse what is not
text, so ``/data/*.csv`` keeps every normal file behaviour and gains one rule. Under
``/json`` a ``Directory`` lists one ``.json`` per stored ``.csv`` and a
``ContentFile`` renders it, freshly on every open::

    $ printf 'name,lang\\nada,en\\n' > /tmp/m/data/people.csv
    $ cat /tmp/m/json/people.json
    [{"name": "ada", "lang": "en"}]

Run it::

    python examples/translator.py /tmp/m --foreground
"""

import csv
import errno
import json
import stat

from defuse2 import ContentFile, Directory, FileSystem, StoreResource
from defuse2.store import read_stored

fs = FileSystem(quota="64 MiB")
fs.store.mkdir("/data", 0o755)


@fs.route("/data/<name>.csv")
class CsvFile(StoreResource):
    def write(self, path, data, offset, fh, ctx):
        if b"\0" in data:
            raise OSError(errno.EINVAL, "CSV files hold text, not binary data")
        return super().write(path, data, offset, fh, ctx)


@fs.route("/json")
class JsonFiles(Directory):
    def entries(self):
        for name in self.store.readdir("/data"):
            mode = self.store.getattr(f"/data/{name}")["st_mode"]
            if name.endswith(".csv") and stat.S_ISREG(mode):
                yield name.removesuffix(".csv") + ".json"


@fs.route("/json/<name>.json")
class JsonFile(ContentFile):
    dynamic = True  # follows data that changes elsewhere: never cache it

    def content(self, name):
        text = read_stored(self.store, f"/data/{name}.csv").decode("utf-8", "replace")
        return json.dumps(list(csv.DictReader(text.splitlines()))) + "\n"


if __name__ == "__main__":
    fs.main()
