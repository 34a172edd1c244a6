"""Stores: what serves the paths no route claims."""

from .base import Context as Context
from .base import Store as Store
from .directory import DirectoryStore as DirectoryStore
from .memory import MemoryStore as MemoryStore
