"""Logging a filesystem mounted from Python: the code of "Logging and debugging".

Run it as ``python logging_setup.py MOUNTPOINT LOGFILE``; reading ``MOUNTPOINT/report``
fails with EIO, and LOGFILE gets the traceback.
"""

import logging
import sys

from defuse2 import FileSystem

fs = FileSystem()


@fs.file("/report")
def report():
    return str(1 / 0)


def serve(mountpoint, log_file):
    logging.basicConfig(
        filename=log_file,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    fs.mount(mountpoint)  # serves until unmounted (or Ctrl-C)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
