"""defuse2: a Flask-style framework for writing FUSE filesystems in Python."""

#: The version of this package (``defuse2 --version`` prints it).
__version__ = "0.1.0"

from . import attributes as attributes
from .attributes import Attributes as Attributes
from .errors import DefuseError as DefuseError
from .filesystem import FileSystem as FileSystem
from .filesystem import Group as Group
from .resources import ContentFile as ContentFile
from .resources import Directory as Directory
from .resources import Resource as Resource
from .store.base import Context as Context
from .store.base import Store as Store
from .store.directory import DirectoryStore as DirectoryStore
from .store.fsspec_store import FsspecStore as FsspecStore
from .store.memory import MemoryStore as MemoryStore
from .store_resource import StoreResource as StoreResource
from .writable import WritableFile as WritableFile
