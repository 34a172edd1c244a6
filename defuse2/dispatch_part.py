"""What each part of the dispatcher may use of the whole.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher**. The
:class:`~defuse2.dispatch.Dispatcher` is assembled from parts, one module each (names,
attributes, extended attributes); :class:`DispatcherPart` declares, for type checkers,
what the assembled dispatcher provides them. It adds nothing at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kept import KeptMetadata
    from .routing import Found, RouteMap
    from .store.base import Context, Store


class DispatcherPart:
    """The base of each part of :class:`~defuse2.dispatch.Dispatcher`."""

    if TYPE_CHECKING:  # what the dispatcher provides
        store: Store
        _routes: RouteMap
        _context: Callable[[], Context]
        _uid: int
        _gid: int
        _kept: KeptMetadata
        _kept_by_path: dict[str, dict[str, int]]

        def _resource(self, op: str, found: Found, path: str, args: tuple[Any, ...]) -> Any: ...
        def _routed(self, op: str, path: str | None, args: tuple[Any, ...]) -> bool: ...
        def _is_dir(self, path: str) -> bool: ...
        def getattr(self, path: str | None, fh: int | None = None) -> Mapping[str, int]: ...
