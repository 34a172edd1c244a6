"""Mounting from your own code: the ``fs.mounted()`` part of the "Testing" how-to."""

from defuse2 import FileSystem

fs = FileSystem()


@fs.file("/motd")
def motd():
    return "Welcome!\n"


def read_motd(mountpoint):
    """Mount ``fs`` on ``mountpoint``, read ``/motd`` through the kernel, unmount."""
    with fs.mounted(mountpoint) as root:  # waits until the mount is live
        return (root / "motd").read_text()
    # here the filesystem is unmounted, also when the block raised
