"""``check_root``: is an fsspec store's root there, and does its backend answer?

Where this sits: the command line -> **check_root** -> fsspec -> the backend, once,
before anything is mounted. Without it a missing bucket, absent credentials or an
endpoint nobody answers at would surface only at the first ``ls`` of the mount, as a
long hang (the backend's client retries) and then ``EIO``. Here each becomes one line
that names the cause and the fix, and nothing is mounted.

The root is asked for with ``fs.info(root)`` in a thread of its own, bounded by
``timeout``. A root that does not exist yet is accepted as an empty directory when the
place it would be made in exists: on an object store (S3, GCS, Azure: backends whose
paths start with a bucket) its bucket, since a prefix exists only through the objects
under it and the first file written makes it; on other backends (``memory://``) always.
A missing bucket is refused: the mount cannot make one.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from ..errors import DefuseError

#: Seconds the backend gets to answer before the store is called unreachable.
TIMEOUT = 5.0


class StoreUnreachable(DefuseError):
    """An fsspec store's backend did not answer for its root, or has no such bucket."""


def check_root(fs: Any, root: str, url: str, *, timeout: float = TIMEOUT) -> None:
    """Refuse a store whose ``root`` cannot be reached through ``fs``.

    :param url: the store as the user wrote it (``s3://bucket/prefix``), for messages.
    :raises StoreUnreachable: with the cause and the fix.
    """
    top = root.strip("/")
    bucket = top.split("/")[0] if fs.root_marker == "" else None
    try:
        info = _ask(fs, root, url, timeout)
    except FileNotFoundError:
        if bucket is None:
            return  # an empty directory, made by the first file written
        if bucket != top:
            with contextlib.suppress(FileNotFoundError):
                _ask(fs, bucket, url, timeout)
                return  # the same, in a bucket that exists
        raise StoreUnreachable(
            f"--store {url}: no such bucket {bucket!r} at {_endpoint(fs)}: create it "
            "first (aws s3 mb s3://BUCKET, or the provider's console) or correct the URL"
        ) from None
    if info.get("type") == "file":
        raise StoreUnreachable(f"--store {url} is a file, not a directory: give its parent")


def _ask(fs: Any, path: str, url: str, timeout: float) -> dict[str, Any]:
    """``fs.info(path)``; every failure but :class:`FileNotFoundError` explained."""
    try:
        return _answer(fs, path, timeout)
    except TimeoutError:
        raise StoreUnreachable(
            f"--store {url}: no answer for {timeout:g} s from {_endpoint(fs)}: check that "
            "the endpoint is up and its address is right (for S3: endpoint_url)"
        ) from None
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise StoreUnreachable(
            f"--store {url}: access denied ({exc}): check the credentials "
            "(for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)"
        ) from None
    except Exception as exc:  # the backend's client has exceptions of its own
        name = type(exc).__name__
        if "Credentials" in name:
            cause = "no credentials found"
            fix = "set them (for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials)"
        else:
            cause = f"cannot reach {_endpoint(fs)} ({name}: {exc})"
            fix = "check the endpoint's address (for S3: endpoint_url) and that it is up"
        raise StoreUnreachable(f"--store {url}: {cause}: {fix}") from None


def _answer(fs: Any, path: str, timeout: float) -> dict[str, Any]:
    """``fs.info(path)``, or :class:`TimeoutError` after ``timeout`` seconds (the call
    is left to end in its daemon thread)."""
    outcome: list[Any] = []

    def ask() -> None:
        try:
            outcome.append(fs.info(path))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    thread = threading.Thread(target=ask, name="defuse2-store-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    info: dict[str, Any] = outcome[0]
    return info


def _endpoint(fs: Any) -> str:
    """Where ``fs`` sends its requests, as far as it says (s3fs does)."""
    kwargs = getattr(fs, "client_kwargs", None) or {}
    endpoint = getattr(fs, "endpoint_url", None) or kwargs.get("endpoint_url")
    return f"the endpoint {endpoint}" if endpoint else f"the {type(fs).__name__} backend"
