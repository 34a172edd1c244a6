"""Choosing a store: the code of the "Choosing a store" how-to."""

import s3fs

from defuse2 import DirectoryStore, FileSystem, FsspecStore


def in_memory():
    """Fast, POSIX to the letter, gone at unmount (unless saved): the default."""
    return FileSystem(quota="256 MiB")


def on_disk(directory):
    """Persistent, as large as the disk: files of a host directory."""
    return FileSystem(store=DirectoryStore(directory))


def in_a_bucket(endpoint_url, bucket):
    """Beyond one machine: objects of an S3 bucket (any fsspec filesystem works)."""
    s3 = s3fs.S3FileSystem(endpoint_url=endpoint_url, use_listings_cache=False)
    return FileSystem(store=FsspecStore(s3, f"{bucket}/data"))
