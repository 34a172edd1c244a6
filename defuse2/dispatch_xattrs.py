"""The dispatcher's extended attributes: ``getxattr``, ``listxattr``, ``setxattr``, ``removexattr``.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher**; these
operations of :class:`~defuse2.dispatch.Dispatcher` live here, beside it. A path no route
serves has the store's attributes; a resource without ``getxattr`` has none (``ENODATA``),
one without ``listxattr`` lists none, and one without ``setxattr`` or ``removexattr``
refuses to change them: ``EROFS`` if it is read-only, ``ENOTSUP`` if it defines ``write``
(``cp -a`` then carries on without them).
"""

from __future__ import annotations

from .answers import MISSING, none_if_absent
from .dispatch_part import DispatcherPart


class XattrOperations(DispatcherPart):
    """The extended-attribute operations of :class:`~defuse2.dispatch.Dispatcher`."""

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """:manpage:`getxattr(2)`; a resource without xattrs has none (``ENODATA``)."""
        found = self._routes.match(path)
        if found is None:
            return self.store.getxattr(path, name)
        return self._resource("getxattr", found, path, (name,))  # type: ignore[no-any-return]

    def find_xattr(self, path: str, name: str) -> bytes | None:
        """:meth:`getxattr` that answers ``None`` where it would raise ``ENODATA``.

        For the binding: the kernel asks for ``security.capability`` before every write,
        and nearly every file has none. Other errors raise as from :meth:`getxattr`.
        """
        found = self._routes.match(path)
        if found is None:
            find = getattr(self.store, "find_xattr", None)
            if find is not None:
                return find(path, name)  # type: ignore[no-any-return]
        elif "getxattr" not in found[0].invokers:
            return None
        return none_if_absent(self.getxattr, path, name)

    def listxattr(self, path: str) -> list[str]:
        """:manpage:`listxattr(2)`."""
        found = self._routes.match(path)
        if found is None:
            return self.store.listxattr(path)
        result = self._resource("listxattr", found, path, ())
        return [] if result is MISSING else result

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        """:manpage:`setxattr(2)`."""
        if not self._routed("setxattr", path, (name, value, options)):
            self.store.setxattr(path, name, value, options, ctx=self._context())

    def removexattr(self, path: str, name: str) -> None:
        """:manpage:`removexattr(2)`."""
        if not self._routed("removexattr", path, (name,)):
            self.store.removexattr(path, name, ctx=self._context())
