"""Snapshots of the store: the code of the "Snapshots" how-to."""

from defuse2 import FileSystem


def save_and_restore(tar_path):
    """Fill a filesystem, save its store to a tar file, load it into a new one."""
    fs = FileSystem(quota="16 MiB")
    client = fs.test_client()
    client.makedirs("/notes/2026")
    client.write_text("/notes/2026/todo.txt", "write the docs\n")
    fs.store.export_tar(tar_path)

    restored = FileSystem(quota="16 MiB")
    restored.store.import_tar(tar_path)
    return restored.test_client().read_text("/notes/2026/todo.txt")
