"""The ``defuse2`` command, and the command line of a filesystem script.

Where this sits: a terminal -> **cli** -> :func:`defuse2.mount.mount` -> libfuse. The
commands only load a filesystem and hand it on; they never talk to the kernel themselves.

::

    defuse2 mount hello.py /tmp/m --foreground --trace
    defuse2 mount notes.py /tmp/m --store ~/notes   # unrouted paths: files in ~/notes
    defuse2 routes hello.py            # the route table, like ``flask routes``
    defuse2 match hello.py /test2.txt  # which route serves a path, with which variables
    defuse2 examples                   # the bundled examples
    defuse2 examples run hello /tmp/m -f

``TARGET`` is ``module:attr`` or ``path/to/file.py:attr``; ``attr`` defaults to ``fs``.
A script that ends with ``fs.main()`` gets the ``mount`` options through
:func:`run_script`: ``python hello.py /tmp/m --foreground``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import DefuseError

if TYPE_CHECKING:
    from .filesystem import FileSystem
    from .store.base import Store

#: Where the bundled examples live: ``examples/`` beside the package in a source tree.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class TargetError(DefuseError):
    """A ``TARGET`` that does not name a filesystem."""


def load_target(target: str) -> FileSystem:
    """The :class:`~defuse2.FileSystem` named by ``module:attr`` or ``file.py:attr``.

    :raises TargetError: the module or attribute is missing, or is not a filesystem.
    """
    from .filesystem import FileSystem

    source, sep, attr = target.rpartition(":")
    if not sep or "/" in attr or attr.endswith(".py"):
        source, attr = target, "fs"
    attr = attr or "fs"
    if not source:
        raise TargetError(f"{target!r} names no module or file (use module:attr or file.py:attr)")
    try:
        module = _load_module(source)
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"importing {source!r} failed: {type(exc).__name__}: {exc}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise TargetError(f"{source!r} has no attribute {attr!r}") from None
    if not isinstance(value, FileSystem):
        raise TargetError(f"{source}:{attr} is a {type(value).__name__}, not a FileSystem")
    return value


def _load_module(source: str) -> Any:
    if source.endswith(".py") or os.sep in source or os.path.isfile(source):
        path = Path(source).resolve()
        if not path.is_file():
            raise TargetError(f"no such file: {source}")
        name = f"defuse2_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise TargetError(f"no module named {source!r}") from None
        raise


# -- the parser ----------------------------------------------------------------------------


def _add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mountpoint", help="an empty directory to mount on")
    parser.add_argument(
        "-f", "--foreground", action="store_true", help="serve in the foreground (default: daemon)"
    )
    parser.add_argument(
        "--trace", action="store_true", help="print one line per FUSE callback (implies -f)"
    )
    parser.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPT[,OPT...]",
        help="libfuse mount options, e.g. -o allow_other,max_read=65536",
    )
    parser.add_argument("--binding", choices=("mfusepy", "fusepy"), help="default: mfusepy")
    parser.add_argument(
        "--libfuse", choices=("2", "3"), help="libfuse major for mfusepy (default: 3)"
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="keep unrouted paths as files in the host directory DIR instead of memory",
    )
    parser.add_argument("--load", metavar="TAR", help="fill the store from a tar archive first")
    parser.add_argument("--save", metavar="TAR", help="save the store to a tar archive at unmount")


def build_parser() -> argparse.ArgumentParser:
    """The ``defuse2`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="defuse2", description="Mount and inspect defuse2 filesystems."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target_help = "module:attr or path/to/file.py:attr (attr defaults to fs)"

    mount = commands.add_parser("mount", help="mount a filesystem")
    mount.add_argument("target", metavar="TARGET", help=target_help)
    _add_mount_arguments(mount)

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


# -- the commands --------------------------------------------------------------------------


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"defuse2: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="defuse2: %(levelname)s: %(message)s")


def _serve(fs: FileSystem, args: argparse.Namespace) -> None:
    """Mount ``fs`` as ``args`` say; load and save the store around it."""
    from .mount import MountError, parse_options

    options: dict[str, Any] = {}
    for text in args.options:
        options.update(parse_options(text))
    if args.libfuse:
        os.environ["DEFUSE2_LIBFUSE"] = args.libfuse
    if args.store:
        fs.store = _open_store(args.store, args.mountpoint)
    store: Any = fs.store
    for flag, method in (("load", "import_tar"), ("save", "export_tar")):
        if getattr(args, flag) and not hasattr(store, method):
            _fail(f"--{flag} needs a store with {method}(); {type(store).__name__} has none")
    args.save = args.save and os.path.abspath(args.save)
    if args.load:
        try:
            store.import_tar(args.load)
        except (OSError, ValueError) as exc:
            _fail(f"cannot load {args.load}: {exc}", 1)
    _setup_logging()
    try:
        fs.mount(
            args.mountpoint,
            foreground=args.foreground or args.trace,
            trace=args.trace,
            binding=args.binding,
            **options,
        )
    except MountError as exc:
        _fail(str(exc), 1)
    if args.save:
        store.export_tar(args.save)


def _open_store(location: str, mountpoint: str) -> Store:
    """The store ``--store`` names: a :class:`~defuse2.store.directory.DirectoryStore`."""
    from .store.directory import DirectoryStore

    root, mount = os.path.realpath(location), os.path.realpath(mountpoint)
    if os.path.commonpath([root, mount]) == root:
        _fail(f"the mount point {mountpoint} is inside the store's directory {location}")
    try:
        return DirectoryStore(location)
    except DefuseError as exc:
        _fail(str(exc))


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
        _fail(f"the bundled examples are not here: {EXAMPLES} (they ship with the source tree)")
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
    fs = _load_or_fail(args.target)
    if args.command == "mount":
        _serve(fs, args)
    elif args.command == "routes":
        _routes(fs)
    elif args.command == "match":
        _match(fs, args.path)


def run_script(fs: FileSystem, argv: Sequence[str] | None = None) -> None:
    """The command line of a script ending in ``fs.main()``: ``script.py MOUNTPOINT [...]``.

    Takes the options of ``defuse2 mount``: ``--foreground``, ``--trace``, ``-o``,
    ``--binding``, ``--libfuse``, ``--store``, ``--load``, ``--save``.
    """
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) or "filesystem",
        description="Mount this filesystem.",
    )
    _add_mount_arguments(parser)
    _serve(fs, parser.parse_args(argv))
