"""A live status file: /status shows the time, uptime and load, fresh on every read.

Teaches content that changes by itself. The kernel caches what ``getattr`` said about
a file and reads only up to that size, so a file whose length changes between two
``cat`` calls must say so: ``dynamic = True`` tells defuse2 to open it with
``direct_io`` (no page cache, reads go on until an empty one) and to report fresh
attributes, so each ``cat`` sees the whole, current text::

    $ cat /tmp/m/status
    time: 2026-11-21T08:15:02+00:00
    up: 0:03:12
    load: 0.42 0.37 0.30
    renders: 7

Run it::

    python examples/status.py /tmp/m --foreground
"""

import datetime
import itertools
import os
import time

from defuse2 import ContentFile, FileSystem

fs = FileSystem(quota="1 MiB")
started = time.monotonic()
counter = itertools.count(1)


@fs.file("/hello")
def hello():
    return "Static files can sit beside live ones.\n"


@fs.route("/status")
class Status(ContentFile):
    dynamic = True

    def content(self):
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        uptime = datetime.timedelta(seconds=round(time.monotonic() - started))
        load = " ".join(f"{n:.2f}" for n in os.getloadavg())
        return f"time: {now.isoformat()}\nup: {uptime}\nload: {load}\nrenders: {next(counter)}\n"


if __name__ == "__main__":
    fs.main()
