"""Names that are not UTF-8: decoded with ``surrogateescape`` on both bindings.

Where this sits: binding -> callbacks -> adapter. A Linux file name is any bytes but
``/`` and NUL; ``ls`` in a directory written by another program may show a name that is
not valid UTF-8. Python's own answer (``os.listdir``, :pep:`383`) turns each byte that
does not decode into a lone surrogate, and back again on the way out, so no name is
lost or refused. mfusepy takes ``errors="surrogateescape"``; fusepy 3.0.1 decodes
strictly and takes only an encoding name, so it gets :data:`SURROGATE_CODEC`, UTF-8 with
``surrogateescape`` whatever error handler it asks for, registered with :mod:`codecs`
when this module is imported.
"""

from __future__ import annotations

import codecs
from typing import Any

#: The name of UTF-8 with ``surrogateescape``, for a binding that takes an encoding only.
SURROGATE_CODEC = "defuse2_utf8_surrogateescape"


def encoding_arguments(binding: str) -> dict[str, str]:
    """The keywords that make ``binding``'s ``FUSE`` class decode with surrogates."""
    return {"encoding": SURROGATE_CODEC} if binding == "fusepy" else {"errors": "surrogateescape"}


def search_codec(name: str) -> codecs.CodecInfo | None:
    """The :mod:`codecs` search function that knows :data:`SURROGATE_CODEC`."""
    if name != SURROGATE_CODEC:
        return None

    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        return codecs.utf_8_encode(text, "surrogateescape")

    def decode(data: Any, errors: str = "strict") -> tuple[str, int]:
        return codecs.utf_8_decode(data, "surrogateescape", True)

    return codecs.CodecInfo(encode, decode, name=SURROGATE_CODEC)


codecs.register(search_codec)
