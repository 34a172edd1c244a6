"""A real S3-API server on 127.0.0.1 for the tests: moto's, in a process of its own.

s3fs talks HTTP to it exactly as it would to S3: requests are signed, objects are
stored, listings are paginated. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

#: The credentials the server accepts (any would do).
KEY, SECRET = "defuse2-test", "defuse2-test-secret"

_SERVE = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the test session closes our stdin
server.stop()
"""


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Start the server; yield its endpoint URL (``http://127.0.0.1:PORT``); stop it."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the S3 server (moto) did not start")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def storage_options(endpoint: str) -> dict[str, Any]:
    """``s3fs.S3FileSystem`` keywords for the server at ``endpoint``."""
    return {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": endpoint,
        "use_listings_cache": False,
    }


def s3_filesystem(endpoint: str, bucket: str) -> Any:
    """A new ``s3fs.S3FileSystem`` for ``endpoint``, with ``bucket`` made if need be."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options(endpoint))
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    return fs
