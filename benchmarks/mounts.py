"""Start and stop the filesystems under test, each in its own process.

Where it sits: the benchmark driver's side. A target is one of

``raw``      the tuned raw reference (``raw_reference.py``), no framework;
``defuse2``  ``FileSystem()`` with its MemoryStore, mounted by the defuse2 CLI
             with default options;
``routed``   defuse2 serving every path from one routed resource over the
             same in-memory tree as ``raw``;
``c``        libfuse's ``passthrough_ll`` example in C over a tmpfs of its own
             (``c_reference.py``): what FUSE itself allows;
``directory`` defuse2 with a ``DirectoryStore`` (``--store``) over a tmpfs of its
             own: a passthrough written with defuse2;
``passthrough`` libfuse's high-level ``passthrough`` example in C, the same API level
             as defuse2, reaching a tmpfs of its own through its mirror of ``/``;
``tmpfs``    the kernel's tmpfs: the physical limit.

A name may carry extra mount options in brackets, ``raw[max_read=65536]`` or
``defuse2[direct_io]``, to compare variants side by side, and a short label in
front, ``d2s=defuse2[nothreads]``, for the table. ``defuse2@REV`` (or
``routed@REV``) runs the defuse2 of git revision ``REV`` instead of this checkout's:
``before=defuse2@main`` next to ``defuse2`` compares a change with what it changes.
:data:`RAW_PLUS` is the raw reference with defuse2's guarantees:
``default_permissions`` and a registered ``getxattr``.

mfusepy loads the libfuse 3 named by :data:`LIBFUSE_PATH` when it is set (a libfuse
built elsewhere, such as a newer release than the system's); otherwise the system's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import c_reference

from defuse2.testing import ScriptMount

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TARGETS = ("raw", "defuse2", "routed", "c", "directory", "passthrough", "tmpfs")
#: The raw reference with the guarantees defuse2 gives by default: the kernel checks
#: permissions (``default_permissions``) and extended attributes exist (a ``getxattr``
#: that answers ``ENODATA``). Like for like with ``defuse2``.
RAW_PLUS = "raw+=raw[default_permissions,xattr]"

#: The libfuse 3 shared library the Python targets load on libfuse 3 (mfusepy's
#: ``FUSE_LIBRARY_PATH``); ``None``: the system's.
LIBFUSE_PATH: str | None = None


@dataclass
class Mount:
    """A mounted target: where it is and the process serving it (None for tmpfs)."""

    name: str
    path: str
    process: subprocess.Popen[bytes] | None = None
    log: str = ""
    kind: str = ""
    source: Mount | None = None  # the directory a passthrough target serves
    server: ScriptMount | None = None  # what starts and stops a FUSE target's process
    inside: str = ""  # where in the mount the workloads run, if not at its root

    @property
    def root(self) -> str:
        """The directory the workloads use."""
        return self.inside or self.path

    @property
    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log or not os.path.exists(self.log):
            return ""
        with open(self.log, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])


_SPEC = re.compile(r"(?:[\w.+-]+=)?([a-z0-9_]+)(?:@([\w./^~-]+))?(?:\[(.*)\])?")


def parse_target(spec: str) -> tuple[str, list[str]]:
    """Split ``[label=]name[@REV][opt,opt=v]`` into the base name and its extra options."""
    match = _SPEC.fullmatch(spec)
    if not match or match.group(1) not in TARGETS:
        raise ValueError(f"unknown target {spec!r}; choose from {', '.join(TARGETS)}")
    extra = [option for option in (match.group(3) or "").split(",") if option]
    return match.group(1), extra


def with_options(spec: str, *options: str) -> str:
    """*spec* with *options* added to its bracketed ones: ``raw[xattr]`` + ``debug``."""
    head, bracket, rest = spec.partition("[")
    inside = rest[:-1] if bracket else ""
    return f"{head}[{','.join(filter(None, [inside, *options]))}]"


def revision(spec: str) -> str | None:
    """The git revision whose defuse2 serves *spec* (``defuse2@main``), if any."""
    match = _SPEC.fullmatch(spec)
    return match.group(2) if match else None


_trees: dict[str, str] = {}


def source_tree(rev: str) -> str:
    """A directory holding the repository at *rev* (``git archive``), made once per run."""
    if rev not in _trees:
        tree = tempfile.mkdtemp(prefix=f"defuse2-bench-{rev.replace('/', '_')}-")
        archive = subprocess.run(
            ["git", "-C", REPO, "archive", rev], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        _trees[rev] = tree
    return _trees[rev]


def label(spec: str) -> str:
    """What the tables call target *spec*: its label, or the spec itself."""
    head = spec.split("[", 1)[0]
    return head.split("=", 1)[0] if "=" in head else spec


def command(
    spec: str,
    mountpoint: str,
    binding: str,
    libfuse: int,
    target: str | None = None,
    trace: bool = False,
) -> list[str]:
    """The command line that serves target *spec* at *mountpoint* in the foreground.

    *target* overrides the ``module:attr`` the defuse2 CLI mounts. *trace* makes the
    server print one line per callback (``--trace``) to its log.
    """
    name, extra = parse_target(spec)
    if name == "raw":
        program = [sys.executable, os.path.join(HERE, "raw_reference.py"), mountpoint]
    else:
        served = (
            target
            or {"defuse2": "bench_targets:store_fs", "routed": "bench_targets:routed_fs"}[name]
        )
        program = [sys.executable, "-m", "defuse2", "mount", served, mountpoint, "--foreground"]
    argv = [*program, "--binding", binding, "--libfuse", str(libfuse)]
    argv += ["--trace"] if trace else []
    return argv + (["-o", ",".join(extra)] if extra else [])


def _environment(libfuse: int, tree: str | None = None) -> dict[str, str]:
    """The server's environment; *tree*: a checkout whose defuse2 it runs."""
    env = dict(os.environ)
    paths = [HERE, tree or REPO, env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["DEFUSE2_LIBFUSE"] = str(libfuse)
    env["FUSE_LIBRARY_NAME"] = "fuse" if libfuse == 2 else "fuse3"
    env.pop("FUSE_LIBRARY_PATH", None)
    if libfuse == 3 and LIBFUSE_PATH:
        env["FUSE_LIBRARY_PATH"] = LIBFUSE_PATH
    return env


def libfuse_version(libfuse: int) -> str:
    """The version (``"3.14"``) of the libfuse ``libfuse`` (2 or 3) the targets load."""
    if libfuse == 3 and LIBFUSE_PATH:
        library = ctypes.CDLL(LIBFUSE_PATH)
    else:
        found = ctypes.util.find_library("fuse" if libfuse == 2 else "fuse3")
        if found is None:
            return str(libfuse)
        library = ctypes.CDLL(found)
    number = library.fuse_version()  # 29 on 2.9, 314 on 3.14
    return f"{number // 10}.{number % 10}" if number < 100 else f"{number // 100}.{number % 100}"


def start(
    spec: str,
    binding: str,
    libfuse: int,
    timeout: float = 20.0,
    target: str | None = None,
    trace: bool = False,
) -> Mount:
    """Mount target *spec* on a fresh directory and wait until it answers.

    With *trace*, the server logs one line per callback to :attr:`Mount.log`.
    """
    name, extra = parse_target(spec)
    path = tempfile.mkdtemp(prefix=f"defuse2-bench-{name}-")
    if name == "tmpfs":
        return _start_tmpfs(spec, path)
    if name == "c":
        return _start_c(spec, path, extra, timeout)
    if name == "passthrough":
        return _start_passthrough(spec, path, extra, timeout)
    if name == "directory":
        source = _start_tmpfs("directory source", tempfile.mkdtemp(prefix="defuse2-bench-dir-"))
        argv = command(spec, path, binding, libfuse, "bench_targets:store_fs", trace)
        try:
            mount = serve(spec, path, [*argv, "--store", source.path], libfuse, timeout)
        except BaseException:
            stop(source)
            raise
        mount.kind, mount.source = "defuse2 with a DirectoryStore over a tmpfs", source
        return mount
    argv = command(spec, path, binding, libfuse, target, trace)
    rev = revision(spec)
    return serve(spec, path, argv, libfuse, timeout, tree=source_tree(rev) if rev else None)


def _start_c(spec: str, path: str, extra: list[str], timeout: float) -> Mount:
    """libfuse's ``passthrough_ll`` over a tmpfs of its own (see ``c_reference.py``)."""
    try:
        binary = c_reference.build()
    except c_reference.Unavailable as error:
        os.rmdir(path)
        raise RuntimeError(f"no C reference: {error}") from None
    source = _start_tmpfs("c source", tempfile.mkdtemp(prefix="defuse2-bench-c-source-"))
    try:
        mount = serve(spec, path, c_reference.command(binary, source.path, path, extra), 3, timeout)
    except BaseException:
        stop(source)
        raise
    mount.kind = "libfuse's passthrough_ll (C, the system's libfuse 3) over a tmpfs"
    mount.source = source
    return mount


def _start_passthrough(spec: str, path: str, extra: list[str], timeout: float) -> Mount:
    """libfuse's high-level ``passthrough``; the workloads reach a tmpfs of its own
    through its mirror of ``/``, so nothing lands on the disk."""
    try:
        binary = c_reference.build(program="passthrough")
    except c_reference.Unavailable as error:
        os.rmdir(path)
        raise RuntimeError(f"no C passthrough: {error}") from None
    source = _start_tmpfs("passthrough source", tempfile.mkdtemp(prefix="defuse2-bench-hl-"))
    try:
        argv = c_reference.high_level_command(binary, path, extra)
        mount = serve(spec, path, argv, 3, timeout)
    except BaseException:
        stop(source)
        raise
    mount.kind = "libfuse's high-level passthrough (C, the system's libfuse 3) over a tmpfs"
    mount.source, mount.inside = source, path + source.path
    return mount


def serve(
    name: str,
    path: str,
    argv: list[str],
    libfuse: int,
    timeout: float = 20.0,
    tree: str | None = None,
) -> Mount:
    """Run ``argv``, a server that mounts on ``path`` in the foreground, and wait until
    the mount answers; the server's output goes to a log beside ``path``. With *tree*,
    the server runs the defuse2 of that checkout."""
    log = path + ".log"
    env = _environment(libfuse, tree)
    server = ScriptMount(
        argv, path, log, timeout=timeout, env=env, major=libfuse, start_new_session=True
    )
    mount = Mount(name, path, log=log, kind="fuse", server=server)
    try:
        mount.process = server.start()
    except RuntimeError:
        tail = mount.log_tail()
        stop(mount)
        raise RuntimeError(f"{name} did not mount (libfuse {libfuse}):\n{tail}") from None
    return mount


def _start_tmpfs(spec: str, path: str) -> Mount:
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8g,mode=0755", "tmpfs", path],
            check=True,
            capture_output=True,
            timeout=20,
        )
        return Mount(spec, path, kind="tmpfs (mount -t tmpfs)")
    except (OSError, subprocess.SubprocessError):
        os.rmdir(path)
        shm = tempfile.mkdtemp(prefix="defuse2-bench-", dir="/dev/shm")
        return Mount(spec, shm, kind="tmpfs (/dev/shm; mount not permitted)")


def pin(mount: Mount, cpu: int) -> None:
    """Run every thread of the process serving ``mount`` on CPU ``cpu`` only.

    With the client pinned to the same CPU, each request is a switch from client to
    server and back, never the wake-up of an idle CPU: on a virtual machine that
    wake-up costs more, and varies more, than a callback.
    """
    if mount.process is None:
        return
    for task in os.listdir(f"/proc/{mount.process.pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), {cpu})


def kill(mount: Mount) -> None:
    """Kill the process serving *mount* (the watchdog's last resort)."""
    if mount.server is not None:
        mount.server.kill()


def stop(mount: Mount, keep_log: bool = False) -> None:
    """Unmount *mount*, end its process and remove its directory; never raises.

    The server's log is removed when it exited cleanly, unless *keep_log*.
    """
    if mount.kind.startswith("tmpfs (/dev/shm"):
        shutil.rmtree(mount.path, ignore_errors=True)
        return
    if mount.server is not None:
        mount.server.stop()
    elif os.path.ismount(mount.path):
        for argv in (["umount", mount.path], ["umount", "-l", mount.path]):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(argv, capture_output=True, timeout=20)
            if not os.path.ismount(mount.path):
                break
    with contextlib.suppress(OSError):
        os.rmdir(mount.path)
    if mount.source is not None:
        stop(mount.source)
    if keep_log:
        return
    if mount.log and mount.process is not None and mount.process.returncode == 0:
        with contextlib.suppress(OSError):
            os.remove(mount.log)  # kept only when the server failed
