"""The ``defuse2`` command, and the command line of a filesystem script.

Where this sits: a terminal -> **cli** -> :func:`defuse2.mount.mount` -> libfuse. The
commands only load a filesystem and hand it on; they never talk to the kernel themselves.

::

    defuse2 mount hello.py /tmp/m --trace     # serves until Ctrl-C or umount
    defuse2 mount hello.py /tmp/m --daemon --log /tmp/hello.log
    defuse2 umount /tmp/m                     # a live or a stale mount
    defuse2 mount notes.py /tmp/m --store ~/notes   # unrouted paths: files in ~/notes
    defuse2 routes hello.py            # the route table, like ``flask routes``
    defuse2 match hello.py /test2.txt  # which route serves a path, with which variables
    defuse2 examples                   # the bundled examples
    defuse2 examples run hello /tmp/m

``TARGET`` is ``module:attr`` or ``path/to/file.py:attr``. ``attr`` names a
:class:`~defuse2.FileSystem` or a function that returns one (a factory, called with no
arguments, or as written: ``app.py:create_fs(quota="1 MiB")``); it defaults to ``fs``,
else ``create_fs``. A script that ends with ``fs.main()`` gets the ``mount`` options
through :func:`run_script`: ``python hello.py /tmp/m``.

Every way of mounting serves in the foreground unless told otherwise (``fs.mount()``,
``fs.main()``, ``defuse2 mount``): the command runs until the filesystem is unmounted,
and Ctrl-C unmounts it. ``--daemon`` detaches once mounted, as FUSE programs such as
``sshfs`` do by default; a daemon has no terminal, so ``--log FILE`` keeps its warnings
and tracebacks.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .autosave import Saver
from .errors import DefuseError
from .options import OptionError
from .target import TargetError as TargetError
from .target import load_target as load_target

if TYPE_CHECKING:
    from .filesystem import FileSystem
    from .store.base import Store


def _examples_directory() -> Path:
    """``defuse2/examples/`` in an installed wheel, else ``examples/`` of a source tree."""
    package = Path(__file__).resolve().parent
    installed = package / "examples"
    return installed if installed.is_dir() else package.parent / "examples"


#: Where the bundled examples live: inside the package when installed from a wheel,
#: ``examples/`` at the top of a source tree.
EXAMPLES = _examples_directory()


# -- the parser ----------------------------------------------------------------------------


def _add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mountpoint", metavar="MOUNTPOINT", help="an empty directory to mount on")
    parser.add_argument(
        "-f",
        "--foreground",
        action="store_true",
        help="serve in the foreground until unmounted or Ctrl-C (the default)",
    )
    parser.add_argument(
        "--daemon",
        action="store_true",
        help="detach once mounted and serve in the background (use with --log FILE)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print one line per FUSE callback (to the --log file if one is given)",
    )
    parser.add_argument(
        "--log",
        metavar="FILE",
        help="append warnings and errors, with tracebacks, to FILE (kept in --daemon mode)",
    )
    parser.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPT[,OPT...]",
        help="libfuse mount options, e.g. -o allow_other,max_read=65536; "
        "-o nonempty mounts over a directory that has entries",
    )
    parser.add_argument(
        "--unchecked-option",
        dest="unchecked_options",
        action="append",
        default=[],
        metavar="OPT[,OPT...]",
        help="a libfuse option defuse2 does not know, passed on without checking its name",
    )
    parser.add_argument("--binding", choices=("mfusepy", "fusepy"), help="default: mfusepy")
    parser.add_argument(
        "--libfuse", choices=("2", "3"), help="libfuse major for mfusepy (default: 3)"
    )
    parser.add_argument(
        "--store",
        metavar="DIR|URL",
        help="keep unrouted paths as files in the host directory DIR, or as objects at an "
        "fsspec URL (s3://bucket/prefix, memory://data ...), instead of memory",
    )
    parser.add_argument(
        "--store-exclusive",
        action="store_true",
        help="with --store DIR: promise that nothing else changes DIR while mounted; the "
        "kernel then keeps names and attributes for 60 s and file pages across opens (a "
        "change made to DIR behind the mount may go unseen until unmount)",
    )
    parser.add_argument("--load", metavar="TAR", help="fill the store from a tar archive first")
    parser.add_argument(
        "--save",
        metavar="TAR",
        help="save the store to a tar archive at unmount, and on SIGUSR1 while mounted",
    )
    parser.add_argument(
        "--save-every",
        metavar="SECONDS",
        type=_positive_seconds,
        help="with --save: also save every SECONDS while mounted",
    )


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The ``defuse2`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="defuse2", description="Mount and inspect defuse2 filesystems."
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target_help = (
        "module:attr or path/to/file.py:attr: a FileSystem, or a function that returns "
        "one (attr defaults to fs, else create_fs)"
    )

    mount = commands.add_parser("mount", help="mount a filesystem")
    mount.add_argument("target", metavar="TARGET", help=target_help)
    _add_mount_arguments(mount)

    umount = commands.add_parser(
        "umount", help="unmount a FUSE mount point, live or stale (its server gone)"
    )
    umount.add_argument("mountpoint", metavar="MOUNTPOINT", help="where the filesystem is mounted")

    routes = commands.add_parser("routes", help="show the route table")
    routes.add_argument("target", metavar="TARGET", help=target_help)

    match = commands.add_parser("match", help="show which route serves a path")
    match.add_argument("target", metavar="TARGET", help=target_help)
    match.add_argument("path", metavar="PATH", help="an absolute path inside the filesystem")

    examples = commands.add_parser("examples", help="list or run the bundled examples")
    actions = examples.add_subparsers(dest="action", metavar="ACTION")
    run = actions.add_parser("run", help="mount a bundled example")
    run.add_argument("name", metavar="NAME", help="an example from `defuse2 examples`")
    _add_mount_arguments(run)
    return parser


def version_text() -> str:
    """What ``defuse2 --version`` prints: this version, and the versions it runs with."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    found = []
    for name in ("mfusepy", "werkzeug"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    python = ".".join(map(str, sys.version_info[:3]))
    return f"defuse2 {__version__} ({', '.join(found)}, Python {python})"


# -- the commands --------------------------------------------------------------------------


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"defuse2: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _setup_logging(log_file: str | None, *, trace: bool) -> None:
    """Send defuse2's warnings and errors (tracebacks included) to stderr, or to the end
    of ``log_file``; with ``trace``, the ``defuse2.trace`` records to the same place (on
    stderr, each line alone, as :func:`defuse2.trace.stderr_handler` prints them)."""
    tracer = logging.getLogger("defuse2.trace")
    if trace:
        tracer.setLevel(logging.INFO)
    if log_file is None:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.WARNING, format="defuse2: %(levelname)s: %(message)s")
        if trace:
            from .trace import stderr_handler

            tracer.addHandler(stderr_handler())
            tracer.propagate = False  # not again through the root's "defuse2: INFO:"
        return
    try:
        handler = logging.FileHandler(os.path.abspath(log_file), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot open the log file {log_file}: {exc.strerror}")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    logger = logging.getLogger("defuse2")
    logger.addHandler(handler)  # the trace's records reach it too
    logger.setLevel(logging.WARNING)


def _serve(fs: FileSystem, args: argparse.Namespace) -> None:
    """Mount ``fs`` as ``args`` say; load and save the store around it."""
    from .mount_options import parse_options
    from .preflight import MountError

    options: dict[str, Any] = {}
    for text in args.options:
        options.update(parse_options(text))
    unchecked: dict[str, Any] = {}
    for text in args.unchecked_options:
        unchecked.update(parse_options(text))
    if args.daemon and args.foreground:
        _fail("choose --foreground (the default) or --daemon, not both")
    if args.daemon and args.trace and not args.log:
        _fail("--trace with --daemon needs --log FILE: a daemon has no terminal to print to")
    if args.libfuse:
        os.environ["DEFUSE2_LIBFUSE"] = args.libfuse
    if args.store:
        fs.store = _open_store(args.store, args.mountpoint, exclusive=args.store_exclusive)
    elif args.store_exclusive:
        _fail("--store-exclusive needs --store DIR: the directory it is about")
    store: Any = fs.store
    for flag, method in (("load", "import_tar"), ("save", "export_tar")):
        if getattr(args, flag) and not hasattr(store, method):
            _fail(f"--{flag} needs a store with {method}(); {type(store).__name__} has none")
    save_to = _save_target(args)
    _setup_logging(args.log, trace=args.trace)
    report = _reporter(args.log)
    if args.load:
        try:
            summary = store.import_tar(args.load)
        except (OSError, ValueError) as exc:
            _fail(f"cannot load {args.load}: {getattr(exc, 'strerror', None) or exc}", 1)
        report(f"loaded {args.load}" + (f": {summary}" if summary is not None else ""))
    saver = None
    if save_to is not None:
        saver = Saver(store, save_to, every=args.save_every, report=report)
        fs.on_start(saver.start)  # in the process that serves (after --daemon's fork)
        fs.on_stop(saver.stop)
    try:
        fs.mount(
            args.mountpoint,
            foreground=not args.daemon,
            trace=args.trace,
            binding=args.binding,
            unchecked_options=unchecked,
            **options,
        )
    except (MountError, OptionError) as exc:
        _fail(str(exc), 1)
    if saver is not None and not saver.save("at unmount"):
        raise SystemExit(1)


def _save_target(args: argparse.Namespace) -> str | None:
    """Where ``--save`` saves, checked before anything is mounted."""
    from .store.archive import check_save_target

    if args.save_every is not None and not args.save:
        _fail("--save-every needs --save TAR: where to save")
    if not args.save:
        return None
    path: str = os.path.abspath(args.save)
    try:
        check_save_target(path)
    except OSError as exc:
        _fail(f"cannot save to {args.save}: {exc.strerror}")
    return path


def _reporter(log_file: str | None) -> Callable[[str], None]:
    """Where the lines about loads and saves go: stderr, and the ``--log`` file if any
    (a daemon's stderr goes nowhere)."""
    logger = logging.getLogger("defuse2.snapshots")
    if log_file is not None:
        logger.setLevel(logging.INFO)

    def report(line: str) -> None:
        print(f"defuse2: {line}", file=sys.stderr, flush=True)
        if log_file is not None:
            logger.info(line)

    return report


def _open_store(location: str, mountpoint: str, *, exclusive: bool = False) -> Store:
    """The store ``--store`` names: an :class:`~defuse2.store.fsspec_store.FsspecStore`
    for a URL, its root checked first (:mod:`defuse2.store.fsspec_check`), or a
    :class:`~defuse2.store.directory.DirectoryStore` for a directory."""
    from .store.directory import DirectoryStore

    if "://" in location:
        if exclusive:
            _fail("--store-exclusive is for a directory store: other clients may change "
                  f"what {location} holds, so the kernel keeps none of it")  # fmt: skip
        try:
            from .store.fsspec_check import check_root
            from .store.fsspec_store import FsspecStore

            store = FsspecStore.from_url(location)
            check_root(store.fs, store.root, location)
            return store
        except ImportError as exc:
            _fail(f"--store {location} needs fsspec and its backend ({exc.name}): "
                  "pip install 'defuse2[fsspec]'")  # fmt: skip
        except (ValueError, OSError) as exc:
            _fail(f"--store {location}: {exc}")
        except DefuseError as exc:
            _fail(str(exc))

    root, mount = os.path.realpath(location), os.path.realpath(mountpoint)
    if os.path.commonpath([root, mount]) == root:
        _fail(f"the mount point {mountpoint} is inside the store's directory {location}")
    if not os.path.isdir(location):
        what = "is not a directory" if os.path.exists(location) else "does not exist"
        _fail(f"--store {location} {what}: give a directory (mkdir -p {location}) or a URL")
    try:
        return DirectoryStore(location, exclusive=exclusive)
    except DefuseError as exc:
        _fail(str(exc))


def _umount(mountpoint: str) -> None:
    """``defuse2 umount``: unmount a FUSE mount, live or stale, and say which it was."""
    from .mountinfo import is_stale, mount_entry
    from .unmounting import unmount

    path = os.path.abspath(mountpoint)
    entry = mount_entry(path)
    if entry is None:
        _fail(f"{path} is not a mount point", 1)
    if not entry.is_fuse:
        _fail(f"{path} is a {entry.fstype} mount, not FUSE; defuse2 umount leaves it alone", 1)
    stale = is_stale(path)
    if not unmount(path):
        _fail(f"could not unmount {path}; files may be open there (as root: umount -l {path})", 1)
    if stale:
        print(f"cleared the stale mount on {path} (its filesystem had exited)")
    else:
        print(f"unmounted {path}")


def _routes(fs: FileSystem) -> None:
    rows = [("Rule", "Resource", "Operations")]
    for info in fs.routes():
        rule, resource, operations = info[0], info[1], ", ".join(info[2])
        implied = len(info) > 3 and info[3]
        rows.append((rule, f"{resource} (implied)" if implied else resource, operations))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    rows.insert(1, ("-" * widths[0], "-" * widths[1], "-" * len(rows[0][2])))
    for rule, resource, operations in rows:
        print(f"{rule:<{widths[0]}}  {resource:<{widths[1]}}  {operations}".rstrip())


def _match(fs: FileSystem, path: str) -> None:
    if not path.startswith("/"):
        _fail(f"PATH must be absolute (start with /), not {path!r}")
    found = fs.match(path)
    if found is None:
        print("store")
        return
    rule, resource, variables = found[0], found[1], found[2]
    values = " ".join(f"{key}={value!r}" for key, value in variables.items())
    print(f"{rule}  {resource}  {values}".rstrip())


def examples() -> dict[str, str]:
    """The bundled examples: name -> the first line of the module docstring."""
    if not EXAMPLES.is_dir():
        _fail(f"the bundled examples are not here: {EXAMPLES} (a wheel or a source tree has them)")
    found = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        if path.name.startswith("_"):
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[path.stem] = docstring.strip().splitlines()[0] if docstring.strip() else ""
    return found


def _examples(args: argparse.Namespace) -> None:
    listed = examples()
    if args.action is None:
        width = max(map(len, listed), default=0)
        for name, summary in listed.items():
            print(f"{name:<{width}}  {summary}")
        return
    name = args.name.removesuffix(".py")
    if name not in listed:
        _fail(f"no example named {name!r}; choose one of {', '.join(listed)}")
    _serve(_load_or_fail(f"{EXAMPLES / name}.py:fs"), args)


def _load_or_fail(target: str) -> FileSystem:
    try:
        return load_target(target)
    except TargetError as exc:
        _fail(str(exc))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``defuse2`` command (and of ``python -m defuse2``)."""
    args = build_parser().parse_args(argv)
    if args.command == "examples":
        _examples(args)
        return
    if args.command == "umount":
        _umount(args.mountpoint)
        return
    fs = _load_or_fail(args.target)
    if args.command == "mount":
        _serve(fs, args)
    elif args.command == "routes":
        _routes(fs)
    elif args.command == "match":
        _match(fs, args.path)


def run_script(fs: FileSystem, argv: Sequence[str] | None = None) -> None:
    """The command line of a script ending in ``fs.main()``: ``script.py MOUNTPOINT [...]``.

    Takes the options of ``defuse2 mount``: ``--daemon``, ``--log``, ``--trace``, ``-o``,
    ``--unchecked-option``, ``--binding``, ``--libfuse``, ``--store``, ``--load``, ``--save``.
    """
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) or "filesystem",
        description="Mount this filesystem.",
    )
    _add_mount_arguments(parser)
    _serve(fs, parser.parse_args(argv))
