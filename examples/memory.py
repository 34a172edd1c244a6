"""A plain in-memory filesystem: no routes, everything kept by the MemoryStore.

Teaches what the store behind every defuse2 filesystem does on its own: files,
directories, symlinks, hard links, permissions and extended attributes, all in memory,
with a hard quota that ``df`` reports truthfully and that makes a write fail with
``ENOSPC`` instead of eating the machine's RAM. The data is gone when the filesystem
is unmounted, unless you save a snapshot.

Run it::

    python examples/memory.py /tmp/m --foreground
"""

from defuse2 import FileSystem

fs = FileSystem(quota="16 MiB", max_nodes=10_000)

if __name__ == "__main__":
    fs.main()
