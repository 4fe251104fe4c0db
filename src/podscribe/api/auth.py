"""Who is calling: ``Authorization: Bearer <key>`` against ``PODSCRIBE_API_KEYS``.

The presented key is compared with every accepted key by :func:`hmac.compare_digest`, and
all of them are always compared, so neither the position of a match nor the length of a
common prefix shows in the response time. A key is never stored or logged: jobs and rate
limits know a caller only by its *fingerprint*, an HMAC-SHA256 of the key under a fixed,
podscribe-specific label (stable across deployments, so job visibility survives restarts
and key order changes, and useless for recovering the key).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from podscribe.errors import UnauthorizedError
from podscribe.settings import ApiSettings

__all__ = ["Caller", "authenticate", "key_fingerprint"]

_FINGERPRINT_LABEL = b"podscribe/api-key-fingerprint/v1"
_MAX_HEADER_LENGTH = 4096


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes:
        fingerprint: hex HMAC-SHA256 of the API key; what jobs and rate limits record.
    """

    fingerprint: str

    @property
    def short(self) -> str:
        """The first 12 hex digits, for log lines."""
        return self.fingerprint[:12]


def key_fingerprint(key: str) -> str:
    """The fingerprint of an API key (hex HMAC-SHA256 under a fixed label).

    Args:
        key: the API key in clear.

    Returns:
        64 hex digits.
    """
    return hmac.new(_FINGERPRINT_LABEL, key.encode("utf-8"), hashlib.sha256).hexdigest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when malformed."""
    if not header or len(header) > _MAX_HEADER_LENGTH:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def authenticate(header: str | None, settings: ApiSettings) -> Caller:
    """Check an ``Authorization`` header.

    Args:
        header: the header's value, or None when absent.
        settings: ``api_keys`` are the accepted keys.

    Returns:
        The caller.

    Raises:
        UnauthorizedError: no header, not a Bearer token, or an unknown key.
    """
    token = bearer_token(header)
    if token is None:
        raise UnauthorizedError("send the API key as 'Authorization: Bearer <key>'")
    presented = token.encode("utf-8")
    matched = False
    for accepted in settings.api_key_values:
        # Every key is compared (no early exit): timing says nothing about which one matched.
        matched |= hmac.compare_digest(presented, accepted.encode("utf-8"))
    if not matched:
        raise UnauthorizedError("the API key is not valid")
    return Caller(fingerprint=key_fingerprint(token))
