"""The C reference: libfuse's own ``passthrough_ll`` example, built here, over a tmpfs.

Where it sits: beside ``raw_reference.py``. The raw reference is the fastest a plain
Python filesystem gets; this is what FUSE itself allows, written in C on libfuse's
low-level API: ``passthrough_ll`` as shipped in Debian's ``libfuse3-dev``
(``/usr/share/doc/libfuse3-dev/examples``), serving a directory of a tmpfs of its own.

It is built on first use with the system's C compiler and ``pkg-config fuse3``, into a
directory under the system's temporary directory, and rebuilt when the example's source
changes. It links the system's libfuse 3 whatever libfuse the Python targets use (a
libfuse built elsewhere has another soname and ABI). Where the examples, the compiler or
``pkg-config`` are missing, :func:`build` says why and the suite leaves the target out.

The options are those an expert picks for a directory nobody else writes to:
``cache=always`` (the page cache is kept across opens) and the raw reference's 60 s
attribute and entry timeouts, one thread (``-s``), no extended attributes (the example's
default: the kernel learns ``ENOSYS`` once).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

#: Where Debian's ``libfuse3-dev`` puts libfuse's examples.
EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"


#: ``-o`` options of the reference (``source=`` is added per mount).
OPTIONS = "cache=always,timeout=60,fsname=c"


class Unavailable(RuntimeError):
    """The C reference cannot be built here; the message says why."""


def build(examples: str = EXAMPLES, program: str = "passthrough_ll") -> str:
    """The path of the built ``program`` (``passthrough_ll``, or ``passthrough``: the
    high-level example), compiling it if need be.

    :raises Unavailable: no examples, no C compiler or no ``pkg-config fuse3``.
    """
    source = os.path.join(examples, f"{program}.c")
    if not os.path.exists(source):
        raise Unavailable(f"{source} not found (install libfuse3-dev)")
    compiler = shutil.which(os.environ.get("CC", "cc"))
    pkg_config = shutil.which("pkg-config")
    if compiler is None or pkg_config is None:
        raise Unavailable("a C compiler and pkg-config are needed to build it")
    flags = subprocess.run(
        [pkg_config, "--cflags", "--libs", "fuse3"], capture_output=True, text=True, check=False
    )
    if flags.returncode:
        raise Unavailable(f"pkg-config fuse3: {flags.stderr.strip()}")
    with open(source, "rb") as handle:
        digest = hashlib.sha256(handle.read() + flags.stdout.encode()).hexdigest()[:12]
    digest += "-xattr" if program == "passthrough" else ""
    directory = os.path.join(tempfile.gettempdir(), f"defuse2-bench-c-{os.getuid()}")
    binary = os.path.join(directory, f"{program}-{digest}")
    if os.path.exists(binary):
        return binary
    os.makedirs(directory, exist_ok=True)
    partial = f"{binary}.{os.getpid()}.partial"
    # The high-level example implements xattrs only with HAVE_SETXATTR (a configure
    # result in libfuse's own build): defined, so it answers them as defuse2 does.
    defines = ["-DHAVE_SETXATTR"] if program == "passthrough" else []
    command = [compiler, "-O2", "-Wall", *defines, "-I", examples, source, "-o", partial]
    done = subprocess.run(
        command + flags.stdout.split(), capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise Unavailable(f"building {source} failed:\n{done.stderr.strip()}")
    os.replace(partial, binary)
    return binary


def high_level_command(binary: str, mountpoint: str, extra: list[str]) -> list[str]:
    """The command line of the high-level ``passthrough``, which serves all of ``/``.

    As shipped, it sets zero attribute and entry timeouts in its ``init`` (it cannot
    know who else changes the files), whatever the options say; it runs on one thread
    here (``-s``) and with ``default_permissions``, as a defuse2 mount does.
    """
    options = ",".join(["default_permissions", "fsname=passthrough", *extra])
    return [binary, "-f", "-s", "-o", options, mountpoint]


def command(binary: str, source: str, mountpoint: str, extra: list[str]) -> list[str]:
    """The command line serving ``source`` at ``mountpoint`` in the foreground."""
    options = ",".join([f"source={source}", OPTIONS, *extra])
    return [binary, "-f", "-s", "-o", options, mountpoint]
