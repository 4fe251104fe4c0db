"""JSON from hosts we do not control, read so that no value can break the reader.

``json.loads`` turns a 400-digit number into an int that later overflows ``float()``, a
``1e999`` into infinity, and 5,000 levels of nesting into a ``RecursionError``: each of those
used to reach callers as ``internal error: <exception text>``. Here numbers must fit what Apple
ever sends (64-bit ids, finite floats) and the nesting Python cannot decode is refused, both as
:class:`~podscribe.errors.UnsafeDocumentError`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from podscribe.errors import UnsafeDocumentError

__all__ = ["NotJsonError", "load_json"]

_MAX_INT_DIGITS = 20  # 2**64 has 20 digits; Apple's ids have at most 19


class NotJsonError(ValueError):
    """The bytes are not JSON at all (a broken answer, not a hostile one)."""


def load_json(content: bytes, what: str) -> Any:
    """Decode untrusted JSON.

    Args:
        content: the document's bytes (UTF-8).
        what: the document, for messages ("Apple's lookup answer").

    Returns:
        The decoded value.

    Raises:
        NotJsonError: not JSON.
        UnsafeDocumentError: a number out of range, a non-finite one, or too deep a nesting.
    """
    try:
        return json.loads(
            content,
            parse_int=lambda digits: _integer(digits, what),
            parse_float=lambda digits: _real(digits, what),
            parse_constant=lambda name: _refuse(f"{what} holds {name}"),
        )
    except RecursionError:
        raise UnsafeDocumentError(f"{what} is nested too deeply to read") from None
    except UnsafeDocumentError:
        raise
    except (UnicodeDecodeError, ValueError) as error:
        raise NotJsonError(f"{what} is not JSON: {error}") from None


def _integer(digits: str, what: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        _refuse(f"{what} holds a {len(digits)}-digit number")
    return int(digits)


def _real(digits: str, what: str) -> float:
    if len(digits) > 64:
        _refuse(f"{what} holds a {len(digits)}-character number")
    value = float(digits)
    if not math.isfinite(value):
        _refuse(f"{what} holds a number out of range")
    return value


def _refuse(message: str) -> Any:
    raise UnsafeDocumentError(message)
