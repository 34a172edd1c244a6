"""Test a filesystem in-process with an ``os``-like client, or mounted, from pytest.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher. A mount sends the
dispatcher what the kernel's VFS asks after it has walked the path; :class:`TestClient`
plays the VFS's part itself and drives **the same dispatcher** directly, so a test runs
without FUSE and what passes in-process passes mounted::

    client = fs.test_client()
    client.write_text("/notes.txt", "hello\\n")
    assert client.stat("/notes.txt").st_size == 6

What the client does like the kernel: path walking with ``.``/``..`` and symlinks
(``ELOOP`` after 40), trailing-slash rules, a working directory for relative paths
(:meth:`~TestClient.chdir`), ``ENAMETOOLONG`` for a path *argument* of 4096 bytes or
more, the umask of its :class:`~defuse2.store.base.Context` applied before create,
``mkdir`` and ``mknod``, ``O_CREAT|O_EXCL``, ``O_TRUNC``, ``O_APPEND``, ``O_DIRECTORY``,
a descriptor table with offsets (``EBADF``), ``flush`` + ``release`` on
:meth:`TestClient.close`, and the ``rename``/``link`` checks done above the filesystem.
What it leaves to the store and the resources: everything else, including **permission
checks** (a mount uses ``default_permissions``, so there the kernel checks modes; the
client does not re-check them, and tests that run as root would not see them anyway).

The pytest plugin (registered as ``defuse2``) gives three fixtures:

``defuse2_filesystem``
    the :class:`~defuse2.FileSystem` under test; override it in your ``conftest.py``
    (the default is a bare ``FileSystem()``, a plain memory filesystem).
``defuse2_client``
    a :class:`TestClient` over it.
``defuse2_mount``
    a :class:`pathlib.Path` where it is really mounted (``fs.mounted``) for the test.
    Without a usable FUSE it skips (see ``defuse2_require_fuse`` below).

and the marker ``mount`` (``@pytest.mark.mount``, or ``@pytest.mark.mount(binding=
"fusepy", trace=True)``) for tests that need a real mount: they are skipped, with the
reason, where the binding they use cannot mount. The ini setting
``defuse2_require_fuse = ci`` fails them instead when the environment variable ``CI`` is
set (``yes``: always), for a CI that must mount. ``--defuse2-binding``,
``--defuse2-libfuse`` and ``--defuse2-trace`` choose the binding, the libfuse major and
tracing for the whole run.

:func:`script_mount` runs a script that mounts in the foreground, as a user starts it;
:class:`ScriptMount` does the same in two steps, start and stop.
"""

# client.py: TestClient, the os-like methods; vfs.py: the kernel's part it plays (path
# walk, descriptor table); gate.py: is FUSE usable here; plugin.py: the pytest fixtures;
# script.py: a filesystem served by a command of its own.
import importlib.util

from .client import TestClient as TestClient
from .gate import fuse_unavailable_reason as fuse_unavailable_reason
from .gate import require_fuse as require_fuse
from .script import ScriptMount as ScriptMount
from .script import script_mount as script_mount
from .vfs import MAXSYMLINKS as MAXSYMLINKS
from .vfs import PATH_MAX as PATH_MAX

__all__ = ["ScriptMount", "TestClient", "fuse_unavailable_reason", "script_mount"]

# The pytest11 entry point names this package, so the fixtures are found here.
if importlib.util.find_spec("pytest") is not None:
    from .plugin import defuse2_client as defuse2_client
    from .plugin import defuse2_filesystem as defuse2_filesystem
    from .plugin import defuse2_mount as defuse2_mount
    from .plugin import pytest_addoption as pytest_addoption
    from .plugin import pytest_configure as pytest_configure
    from .plugin import pytest_runtest_setup as pytest_runtest_setup
