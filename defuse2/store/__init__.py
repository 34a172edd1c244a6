"""Stores: what serves the paths no route claims."""

from .base import Context as Context
from .base import Store as Store
from .base import read_stored as read_stored
from .directory import DirectoryStore as DirectoryStore
from .memory import MemoryStore as MemoryStore
