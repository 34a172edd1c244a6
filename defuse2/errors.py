"""Errors that belong to the programmer, not to the filesystem.

Filesystem errors are plain :class:`OSError` values with a real errno: they travel
through the binding to the kernel and reach the caller as ``errno``. A mistake in how
defuse2 is *used* (a bad route, a resource method asking for an argument that does not
exist, a wrong return type) is a :class:`DefuseError` instead. It is deliberately *not*
an ``OSError``, so it can never be mistaken for an errno and quietly swallowed.
"""


class DefuseError(Exception):
    """A setup or programming mistake in code that uses defuse2."""
