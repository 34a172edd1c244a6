"""The filesystem under conformance tests: nothing routed, everything in the store.

Mounted by the CLI as ``conformance.apps:fs``; the test client builds a fresh one per test.
"""

from defuse2 import FileSystem

#: The store's byte quota: small, so that filling it is quick even through a mount.
QUOTA = 4 * 1024 * 1024


def make_filesystem() -> FileSystem:
    """A store-only filesystem with :data:`QUOTA`."""
    return FileSystem(quota=QUOTA)


fs = make_filesystem()

#: A roomier filesystem for the randomized differential and concurrency runs.
roomy = FileSystem(quota=256 * 1024 * 1024)
