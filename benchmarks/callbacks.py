"""Per-callback cost in one process: the raw reference, defuse2, and a routed resource.

Where it sits: **these calls** stand in for libfuse -> binding (mfusepy or fusepy) ->
target. There is no mount and no kernel: each target's ``FUSE`` object is built
without mounting, and its C-facing callbacks are called through ctypes thunks of the
binding's own prototypes, with C buffers for ``struct stat`` and for data, just as
libfuse calls them. The targets:

``raw``      the tuned raw reference (``raw_reference.py``) on the binding's ``FUSE``
             class, its ``getxattr`` answering ``ENODATA`` (its ``-o xattr`` experiment);
``defuse2``  ``FileSystem()`` as a user gets it, through defuse2's ``FUSE`` class and
             adapter, with the mount's default options;
``routed``   ``bench_targets.routed_fs``: one routed resource over raw's in-memory tree.

Run::

    python benchmarks/callbacks.py [--binding mfusepy|fusepy] [--libfuse 2|3]
                                   [--rounds 7] [--ops getattr,write-4k,...]

It prints microseconds per call, each the median of ``--rounds`` rounds (the order
of the targets rotates every round), and the ratios defuse2/raw and routed/raw. Time
is this thread's CPU time, so other processes on the machine disturb it less.

``--callgrind TARGET`` makes a fixed number of calls (``--calls N`` per op) for one
target, with no timing, for ``valgrind --tool=callgrind`` (give it the interpreter
itself, not a shell shim). Run it with ``N`` and ``2N`` calls: the difference in
instructions divided by ``N`` is the cost per call.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

TARGETS = ("raw", "defuse2", "routed")

#: Every op: its calls per timed batch.
OPS = {
    "getattr": 3000,
    "fgetattr": 3000,  # libfuse 2 only: getattr with a file handle
    "write-100": 2000,
    "write-4k": 2000,
    "write-128k": 300,
    "read-4k": 2000,
    "read-128k": 300,
    "create+release": 1000,
    "unlink": 1000,
    "readdir": 1000,
    "getxattr": 3000,
}

FILE, DIRECTORY, ENTRIES = b"/f", b"/d", 16


class Target:
    """One binding ``FUSE`` object, unmounted, and its callbacks as libfuse sees them."""

    def __init__(self, name: str, fuse: Any, module: Any, major: int) -> None:
        self.name, self.fuse, self.module, self.major = name, fuse, module, major
        self.prototypes = {field[0]: field[1] for field in module.fuse_operations._fields_}
        self.stat = module.c_stat()
        self.file = ctypes.pointer(module.fuse_file_info(flags=os.O_RDWR))
        self.directory = ctypes.pointer(module.fuse_file_info())
        self.new = ctypes.pointer(module.fuse_file_info(flags=os.O_RDWR | os.O_CREAT))
        self._thunks: dict[str, Any] = {}

    def registered(self, name: str) -> bool:
        """Whether the binding would hand ``name`` to libfuse for this target."""
        wanted = name[1:] if name in ("fgetattr", "ftruncate") else name
        value = getattr(self.fuse.operations, wanted, None)
        return value is not None and not getattr(value, "libfuse_ignore", False)

    def callback(self, name: str) -> Any:
        """The C function libfuse would call for ``name``: a thunk around the method."""
        if name not in self._thunks:
            method = getattr(self.fuse, f"{name}_fuse_{self.major}", None)
            if method is None or not hasattr(self.module, "fuse_version_major"):
                method = getattr(self.fuse, name)
            wrapped = functools.partial(self.fuse._wrapper, method)
            self._thunks[name] = self.prototypes[name](wrapped)
        return self._thunks[name]

    def init(self) -> None:
        """libfuse's ``init``, with zeroed structs where it passes pointers."""
        argtypes = self.prototypes["init"]._argtypes_
        args = [
            ctypes.pointer(t._type_()) if issubclass(t, ctypes._Pointer) else None for t in argtypes
        ]
        self.callback("init")(*args)

    def setup(self) -> None:
        """``/f`` (128 KiB, kept open) and ``/d`` with :data:`ENTRIES` files."""
        self.init()
        check(self.callback("create")(FILE, 0o100644, self.file), 0, "create /f")
        self.file.contents.flags = os.O_RDWR
        data = (ctypes.c_byte * 131072)()
        check(self.callback("write")(FILE, data, len(data), 0, self.file), len(data), "write")
        check(self.callback("mkdir")(DIRECTORY, 0o755), 0, "mkdir /d")
        for index in range(ENTRIES):
            name = b"/d/e%02d" % index
            check(self.callback("create")(name, 0o100644, self.new), 0, "create /d/eN")
            if self.registered("release"):
                check(self.callback("release")(name, self.new), 0, "release /d/eN")
        if self.registered("opendir"):
            check(self.callback("opendir")(DIRECTORY, self.directory), 0, "opendir /d")


def check(result: int, expected: int, what: str) -> None:
    if result != expected:
        raise SystemExit(f"{what}: answered {result}, expected {expected}")


# -- the ops --------------------------------------------------------------------------------

SIZES = {"100": 100, "4k": 4096, "128k": 131072}


def one_call(
    target: Target, op: str, filler: Any = None
) -> tuple[Any, tuple[Any, ...], int] | None:
    """The callback, arguments and expected answer of one call of ``op``; ``None``: no
    such call on this libfuse. ``filler`` is readdir's (default: one that answers 0)."""
    stat, file, major = ctypes.pointer(target.stat), target.file, target.major
    if op == "getattr":
        return target.callback(op), (FILE, stat, None)[: 3 if major == 3 else 2], 0
    if op == "fgetattr":
        return None if major == 3 else (target.callback(op), (FILE, stat, file), 0)
    if op.startswith(("write-", "read-")):
        kind, _, size_name = op.partition("-")
        size = SIZES[size_name]
        return target.callback(kind), (FILE, (ctypes.c_byte * size)(), size, 0, file), size
    if op == "readdir":
        filler = filler or _filler(target.prototypes["readdir"]._argtypes_[2])
        flags = (0,) if major == 3 else ()  # libfuse 3: enum fuse_readdir_flags
        return target.callback(op), (DIRECTORY, None, filler, 0, target.directory, *flags), 0
    if op == "getxattr":
        return target.callback(op), (FILE, b"security.capability", None, 0), -errno.ENODATA
    raise ValueError(op)


def op_runner(target: Target, op: str) -> Callable[[int], None] | None:
    """A function making ``calls`` calls of ``op`` on ``target``; ``None``: no such op."""
    if op == "create+release":
        return functools.partial(_create_release, target)
    if op == "unlink":
        return functools.partial(_unlink, target)
    call = one_call(target, op)
    if call is None:
        return None
    callback, args, _ = call
    return functools.partial(_repeat, callback, args)


def check_answer(target: Target, op: str) -> None:
    """One call of ``op``, checked: every target must do the work, not fail fast."""
    if op in BATCHES:
        return  # create answers EEXIST, unlink ENOENT if the other did not run: checked below
    names: list[bytes] = []
    fill_dir_t = target.prototypes["readdir"]._argtypes_[2]

    def count(buf: Any, name: bytes, *rest: Any) -> int:
        names.append(name)
        return 0

    counter = fill_dir_t(count)
    call = one_call(target, op, counter)
    if call is None:
        return
    ctypes.memset(ctypes.byref(target.stat), 0xFF, ctypes.sizeof(target.stat))
    callback, args, expected = call
    check(callback(*args), expected, f"{target.name} {op}")
    if op.endswith("getattr"):
        check(target.stat.st_size, 131072, f"{target.name} {op} st_size")
    if op == "readdir":
        check(len(names), ENTRIES + 2, f"{target.name} readdir: names")


def _repeat(callback: Any, args: tuple[Any, ...], calls: int) -> None:
    for _ in range(calls):
        callback(*args)


#: Ops timed in batches of fresh names: each makes the names the other removes.
BATCHES = ("create+release", "unlink")


@functools.cache
def _names(calls: int) -> list[bytes]:
    return [b"/n%d" % index for index in range(calls)]


def _create_release(target: Target, calls: int) -> None:
    create, new = target.callback("create"), target.new
    release = target.callback("release") if target.registered("release") else None
    errors = 0
    for name in _names(calls):
        errors |= create(name, 0o100644, new)
        if release is not None:  # else libfuse makes no call
            release(name, new)
    check(errors, 0, f"{target.name} create")


def _unlink(target: Target, calls: int) -> None:
    unlink = target.callback("unlink")
    errors = 0
    for name in _names(calls):
        errors |= unlink(name)
    check(errors, 0, f"{target.name} unlink")


def _filler(fill_dir_t: Any) -> Any:
    """A real C function of the binding's ``fuse_fill_dir_t`` type that answers 0.

    ``labs(buf)`` with ``buf`` NULL: it ignores the name, stat and offset arguments.
    """
    labs = ctypes.CDLL(None).labs
    return fill_dir_t(ctypes.cast(labs, ctypes.c_void_p).value)


# -- building the targets -------------------------------------------------------------------


def _fuse_object(fuse_class: type, operations: Any, encoding: str) -> Any:
    """An instance of a binding's ``FUSE`` class with what its callbacks use, unmounted."""
    fuse: Any = object.__new__(fuse_class)
    fuse.operations = operations
    fuse.raw_fi = False
    fuse.encoding, fuse.errors = encoding, "surrogateescape"
    fuse.use_ns = True
    fuse._FUSE__critical_exception = None
    fuse._libfuse2_options_moved_into_libfuse3_config = {}
    return fuse


def _stand_in_context(caller: Any) -> Callable[[], Any]:
    """Who is asking: outside a FUSE loop libfuse has no ``fuse_get_context()``.

    A foreign call of the same shape stands in for it: ``memmove(p, p, 0)`` returns a
    pointer to a ``struct fuse_context`` of this process. As on a mount with the default
    single-threaded loop, it is asked once and the struct is read on every call.
    """
    context = caller.FuseContext(uid=os.getuid(), gid=os.getgid(), pid=os.getpid(), umask=0o22)
    memmove = ctypes.CDLL(None)["memmove"]
    memmove.restype = ctypes.POINTER(caller.FuseContext)
    memmove.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    address = ctypes.addressof(context)
    get = functools.partial(memmove, address, address, 0)
    get.keep = context  # type: ignore[attr-defined]
    return caller.context_function(get, single_threaded=True)  # type: ignore[no-any-return]


def build_targets(binding: str, libfuse: int, names: list[str]) -> list[Target]:
    """Import the binding for ``libfuse`` (before defuse2 does) and build ``names``."""
    import raw_reference

    module = raw_reference.import_binding(binding, libfuse)
    os.environ["DEFUSE2_BINDING"], os.environ["DEFUSE2_LIBFUSE"] = binding, str(libfuse)
    import bench_targets

    from defuse2 import FileSystem, assembly, caller

    targets = []
    for name in names:
        if name == "raw":
            operations = raw_reference.operations_class(module)()
            type(operations).getxattr = staticmethod(raw_reference._no_xattr)
            fuse = _fuse_object(module.FUSE, operations, "utf-8")
        else:
            filesystem = FileSystem() if name == "defuse2" else bench_targets.routed_fs
            context = _stand_in_context(caller)
            prepared = assembly.prepare(filesystem, binding=binding, context=context)
            encoding = prepared.arguments.get("encoding", "utf-8")
            fuse = _fuse_object(prepared.fuse_class, prepared.operations, encoding)
        target = Target(name, fuse, module, libfuse)
        target.setup()
        targets.append(target)
    return targets


# -- measuring ------------------------------------------------------------------------------


def measure(targets: list[Target], ops: list[str], rounds: int) -> dict[tuple[str, str], float]:
    """Median µs per call of every (op, target), target order rotated each round."""
    runners = {(op, t.name): op_runner(t, op) for op in ops for t in targets}
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    for round_ in range(rounds):
        shift = round_ % len(targets)
        order = targets[shift:] + targets[:shift]
        for op in ops:
            for target in order:
                run = runners[op, target.name]
                if run is None:
                    continue
                gc.collect()
                start = time.thread_time_ns()
                run(OPS[op])
                samples[op, target.name].append((time.thread_time_ns() - start) / OPS[op] / 1e3)
    return {key: statistics.median(values) for key, values in samples.items() if values}


def report(medians: dict[tuple[str, str], float], ops: list[str], title: str) -> None:
    names = [name for name in TARGETS if any(key[1] == name for key in medians)]
    print(title)
    header = f"{'op':<16}" + "".join(f"{name:>10}" for name in names)
    ratios = [name for name in names if name != "raw" and "raw" in names]
    print(header + "".join(f"{name + '/raw':>14}" for name in ratios))
    for op in ops:
        if (op, names[0]) not in medians:
            continue
        line = f"{op:<16}" + "".join(f"{medians[op, name]:>10.2f}" for name in names)
        for name in ratios:
            line += f"{medians[op, name] / medians[op, 'raw']:>13.2f}x"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", choices=["mfusepy", "fusepy"], default="mfusepy")
    parser.add_argument("--libfuse", type=int, choices=[2, 3], default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated; default: all")
    parser.add_argument("--callgrind", choices=TARGETS, help="one target, fixed calls, no timing")
    parser.add_argument("--calls", type=int, default=1000, help="calls per op with --callgrind")
    args = parser.parse_args(argv)
    libfuse = args.libfuse or (2 if args.binding == "fusepy" else 3)
    ops = [op for op in args.ops.split(",") if op]
    unknown = set(ops) - OPS.keys()
    if unknown:
        parser.error(f"unknown ops {', '.join(sorted(unknown))}; choose from {', '.join(OPS)}")
    if any(op in BATCHES for op in ops):
        ops = [op for op in ops if op not in BATCHES] + list(BATCHES)
    names = [args.callgrind] if args.callgrind else list(TARGETS)
    targets = build_targets(args.binding, libfuse, names)
    for target in targets:
        for op in ops:
            check_answer(target, op)
    if args.callgrind:
        for op in ops:
            run = op_runner(targets[0], op)
            if run is not None:
                run(args.calls)
        return
    medians = measure(targets, ops, args.rounds)
    title = (
        f"{args.binding} on libfuse {libfuse}: µs per call, "
        f"median of {args.rounds} rounds (python {sys.version.split()[0]})"
    )
    report(medians, ops, title)


if __name__ == "__main__":
    main()
