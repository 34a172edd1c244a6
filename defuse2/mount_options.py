"""The ``-o`` options of a mount: defuse2's defaults, and the ``-o`` string parsed.

Where this sits: between the caller and libfuse. ``fs.mount(path, allow_other=True)``
and ``defuse2 mount ... -o allow_other`` both end here: :func:`parse_options` turns the
command line's string into keywords, :func:`fuse_options` lays them over the defaults
below, and :mod:`defuse2.options` checks each name before anything is mounted.

Defaults (each can be changed by passing the option; ``False`` removes one). The speed
figures are from ``benchmarks/suite.py``:

- ``default_permissions``: the kernel checks modes and owners against what ``getattr``
  reports, exactly as on a disk filesystem.
- libfuse's single-threaded loop (``-s``), in C, and spare reader threads that join it
  only while a call is slow (:mod:`defuse2.readers`): a slow or hung resource method
  holds back only its own request, and the loop costs what the single-threaded one
  does. ``threads=True`` (``-o threads``) runs libfuse's threaded loop instead, whose
  worker threads keep their Python thread state (:mod:`defuse2.threadstate`); it costs
  more per request and adds nothing but libfuse's own thread pool.
- ``fsname=defuse2``: what ``df`` and ``/proc/mounts`` show as the source.
- libfuse 2 only: ``big_writes`` and ``max_write=131072`` (libfuse 2 otherwise writes in
  4 KiB requests; libfuse 3 already negotiates large writes).
- ``writeback_cache`` (libfuse 3 only, off by default): the kernel gathers writes and
  sends them later; a full store is then reported by ``fsync``/``close`` (see the
  "Speed" page of the documentation).
- libfuse 3 only, for ``-o threads``: ``max_idle_threads=100000``, which is libfuse's
  own "keep idle threads" default spelled out (libfuse 3.14.0 warns about its internal
  value).
- xattrs are registered when the filesystem implements them; then the kernel asks
  ``getxattr("security.capability")`` before every ``write``, except on libfuse 3.17
  and later, where defuse2 takes over clearing capabilities and setuid/setgid bits
  (``FUSE_CAP_HANDLE_KILLPRIV_V2``, :mod:`defuse2.caching`) and the kernel asks once
  per file. ``xattrs=False`` (``-o xattrs=no``) leaves them out.
- Files unlinked while open: libfuse's own scheme. It renames such a file to
  ``.fuse_hiddenXXXX`` in the same directory and removes that name at the last close;
  the store hides those names. (``hard_remove`` would leave ``fstat``/``fchmod`` on the
  descriptor without a path: the kernel sends no handle with them.) One case stays out
  of reach of libfuse's high-level API: once the *directory* of such a file is removed
  too, ``fstat`` on its descriptor answers ``ESTALE`` (libfuse 3) or ``ENOENT``
  (libfuse 2); ``read``, ``write`` and ``close`` keep working.
- ``use_ino``: ``stat`` shows the inode numbers the filesystem reports (the store's own;
  a stable number per routed path), so hard links share one ``st_ino`` as on a disk.
- Attribute and entry timeouts per reply (:mod:`defuse2.replytimeouts`): 60 s for the
  paths of an exclusive store (the ``MemoryStore``; only the kernel changes them), 1 s
  for routed paths and other stores (libfuse's default), 0 for dynamic resources and for
  files with more than one hard link; ``attr_timeout`` replaces 60 and 1 s. libfuse's
  high-level API gives each name of a hard-linked file its own kernel inode, so a change
  made through one name would otherwise stay invisible through the other. libfuse 3
  hands its live configuration to ``init``; libfuse 2.9 keeps it in its ``struct fuse``,
  where :mod:`defuse2.libfuse2_config` finds it (and checks it) on x86-64. libfuse 2
  cannot tell the kernel to forget what it cached before a ``link(2)``: the old name of
  a new hard link shows what was cached for it then (``st_nlink`` 1, and not a mode or
  owner changed meanwhile through another name) until its attributes expire, unless
  something refreshed them (a write does); so on libfuse 2 the store's paths get 1 s
  too (or ``attr_timeout``), not 60 s, and ``-o attr_timeout=0`` closes the gap.

The working directory stays as it was (libfuse's ``fuse_daemonize()``, not called here,
"""

from __future__ import annotations

from collections.abc import Mapping


def parse_options(text: str) -> dict[str, str | bool]:
    """Turn a libfuse ``-o`` string (``"allow_other,max_read=65536"``) into keywords."""
    options: dict[str, str | bool] = {}
    for item in text.split(","):
        if item := item.strip():
            key, sep, value = item.partition("=")
            options[key] = value if sep else True
    return options


def fuse_options(options: Mapping[str, object], *, major: int) -> dict[str, object]:
    """The ``-o`` options of a mount: defuse2's defaults updated with ``options``.

    A value of ``True`` is a flag (``allow_other``), ``False`` or ``None`` removes a
    default (``default_permissions=False``), anything else is ``key=value``.
    """
    merged: dict[str, object] = {
        "fsname": "defuse2",
        "default_permissions": True,
        "nothreads": True,
        "use_ino": True,
    }
    if major == 2:
        merged.update(big_writes=True, max_write=131072)
    else:
        # libfuse's own default ("unlimited"), spelled out: libfuse 3.14.0 warns about
        # its internal value on every mount otherwise.
        merged.update(max_idle_threads=100000)
    merged.update(options)
    if "threads" in merged:
        merged["nothreads"] = not is_true(merged.pop("threads"))
    if major == 3 or not is_true(merged.get("nonempty", False)):
        # defuse2 checks the mount point itself; libfuse 3 has no such option.
        merged.pop("nonempty", None)
    return {key: value for key, value in merged.items() if value is not False and value is not None}


def is_true(value: object) -> bool:
    """``True``, or a string from ``-o`` such as ``yes``/``1``/``on``."""
    if isinstance(value, str):
        return value.strip().lower() in ("", "1", "yes", "true", "on")
    return bool(value)
