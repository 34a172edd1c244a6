"""The errno a call fails with: the one helper the tests share for it.

``assert errno_of(os.rmdir, path) == errno.ENOTEMPTY`` reads as the specification it
is; the test fails where the call does not raise :class:`OSError`. (The conformance
checks use :func:`conformance.targets.errno_of`, which answers ``None`` for a call that
succeeds, to compare targets that may disagree.)
"""

from __future__ import annotations

from typing import Any

import pytest


def errno_of(call: Any, *args: Any) -> int:
    """The errno that ``call(*args)`` fails with; the test fails if it raises no OSError."""
    with pytest.raises(OSError) as raised:
        call(*args)
    assert raised.value.errno is not None, raised.value
    return raised.value.errno
