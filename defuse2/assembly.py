"""Everything a mount needs but the mount point: the adapter, the ``FUSE`` class, options.

Where this sits: binding -> callbacks -> **adapter** -> dispatcher. :func:`prepare`
puts together, for one filesystem on one binding, the pieces that
:func:`defuse2.mount.mount` then hands to libfuse:

- the binding (:mod:`defuse2.bindings`) and its libfuse major;
- the ``-o`` options, checked (:mod:`defuse2.options`) and laid over the defaults
  (:mod:`defuse2.mount_options`);
- the dispatcher, told who is asking (:mod:`defuse2.caller`);
- the adapter (:mod:`defuse2.adapter`), one method per FUSE operation, with fusepy's
  ``Operations`` mixed in where that binding needs it, and what it must know of the
  mount: the per-reply timeouts, the kernel's cache invalidation, the writeback cache;
- the binding's ``FUSE`` class with defuse2's callbacks (:mod:`defuse2.callbacks`), built
  once per binding, and the keywords it is called with.

Nothing is mounted here, so a benchmark can drive the callbacks without a kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .adapter import Operations, operations_class
from .bindings import binding_name, import_binding
from .callbacks import fuse_class
from .caller import libfuse_context
from .invalidation import invalidator
from .libfuse2_config import find_config
from .mount_options import fuse_options, is_true
from .options import check_options
from .store.base import Context
from .surrogates import encoding_arguments

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .filesystem import FileSystem

#: Names the fusepy ``Operations`` base class would register although we never implement.
FUSEPY_EXTRAS = ("bmap", "ioctl", "fsyncdir", "lock")


class Prepared(NamedTuple):
    """Everything a mount needs but the mount point: what :func:`prepare` returns."""

    fuse_class: type
    operations: Operations
    arguments: dict[str, Any]  # the FUSE class's keywords: encoding and -o options
    major: int


def adapter_class(
    dispatcher: Dispatcher,
    binding: str,
    *,
    xattrs: bool,
    trace: bool | Callable[[str], None],
) -> type[Operations]:
    """The adapter class for ``binding``; fusepy's ``Operations`` is mixed in there."""
    if binding == "fusepy":
        base = import_binding("fusepy").Operations
        return operations_class(
            dispatcher, bases=(base,), unregister=FUSEPY_EXTRAS, xattrs=xattrs, trace=trace
        )
    return operations_class(dispatcher, xattrs=xattrs, trace=trace)


_fuse_classes: dict[str, type] = {}


def binding_fuse_class(binding: str) -> type:
    """The binding's ``FUSE`` class with defuse2's callbacks (built once per binding)."""
    if binding not in _fuse_classes:
        _fuse_classes[binding] = fuse_class(import_binding(binding))
    return _fuse_classes[binding]


def prepare(
    filesystem: FileSystem,
    *,
    trace: bool | Callable[[str], None] = False,
    binding: str | None = None,
    options: Mapping[str, object] | None = None,
    unchecked_options: Mapping[str, object] | None = None,
    context: Callable[[], Context] | None = None,
) -> Prepared:
    """The adapter and the FUSE class for ``filesystem`` on ``binding``; nothing mounted.

    :param context: who is asking; default: libfuse's ``fuse_get_context()``.
    """
    name = binding_name(binding)
    module = import_binding(name)
    major = 2 if name == "fusepy" else int(module.fuse_version_major)
    check_options(options or {}, major=major)
    settings = fuse_options({**(options or {}), **(unchecked_options or {})}, major=major)
    if context is None:  # per thread: slow calls bring spare reader threads
        context = libfuse_context(module._libfuse)
    dispatcher = filesystem.dispatcher(context=context)
    xattrs = is_true(settings.pop("xattrs", True))
    writeback = is_true(settings.pop("writeback_cache", False))
    adapter = adapter_class(dispatcher, name, xattrs=xattrs, trace=trace)

    operations = adapter(dispatcher)
    operations.per_reply_timeouts = True  # safe with several threads (replytimeouts)
    if major == 2:
        operations.find_libfuse2_config = functools.partial(
            find_config,
            module._libfuse,
            entry=float(settings.get("entry_timeout", 1.0)),  # type: ignore[arg-type]
            negative=float(settings.get("negative_timeout", 0.0)),  # type: ignore[arg-type]
            attr=float(settings.get("attr_timeout", 1.0)),  # type: ignore[arg-type]
        )
    operations.invalidator = invalidator(module._libfuse, major)
    operations.writeback = writeback
    operations.kernel_checks_permissions = bool(settings.get("default_permissions"))
    if "attr_timeout" in settings:  # the caller's timeout is the base of the per-reply ones
        operations.timeout = float(settings["attr_timeout"])  # type: ignore[arg-type]
        operations.store_timeout = operations.timeout
    if major == 2:  # the old name of a new hard link stays stale this long (mount_options)
        operations.store_timeout = min(operations.store_timeout, operations.timeout)
    arguments = {**encoding_arguments(name), **settings}
    return Prepared(binding_fuse_class(name), operations, arguments, major)
