"""What a reply must be before its body is read: status, declared length, coding, media type.

The checks :class:`~podscribe.egress.fetcher.SafeFetcher` makes on a response's status line and
headers, each turning a reply that will not do into podscribe's error for it: 429 and 5xx are
transient (worth another try), other non-2xx answers are not; a declared length over the cap
is refused unread; an audio download served as a document type is not audio.
"""

from __future__ import annotations

import httpx

from podscribe.egress.content_coding import Coding, content_coding
from podscribe.errors import (
    FetchFailedError,
    NotAudioError,
    TooLargeError,
    UpstreamStatusError,
    UpstreamThrottledError,
)

__all__ = [
    "check_audio_content_type",
    "check_declared_length",
    "raise_for_status",
    "reply_coding",
]

# Content types that are never audio; anything else is decided by the first bytes.
_NOT_AUDIO_TYPES = ("text/", "image/", "multipart/", "font/")
_NOT_AUDIO_MARKERS = ("json", "xml", "html", "javascript", "pdf", "mpegurl", "zip")


def raise_for_status(response: httpx.Response, url: str) -> None:
    """Refuse a reply that is not 2xx.

    Raises:
        UpstreamThrottledError: 429, with its ``Retry-After`` seconds when given (transient).
        FetchFailedError: a 5xx answer (transient).
        UpstreamStatusError: any other non-2xx answer (3xx included, where not followed).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise UpstreamThrottledError(
            f"{url}: 429 Too Many Requests", retry_after=_retry_after(response)
        )
    if status >= 500:
        raise FetchFailedError(f"{url}: server error {status}", status)
    raise UpstreamStatusError(f"{url}: HTTP {status}", status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def reply_coding(response: httpx.Response, allowed: frozenset[Coding], url: str) -> Coding:
    """The reply's content coding, refused unless it is one of ``allowed`` and not stacked.

    Raises:
        UnsafeDocumentError: a stacked coding, or one not in ``allowed``.
    """
    return content_coding(response.headers.get_list("content-encoding"), allowed=allowed, url=url)


def check_declared_length(response: httpx.Response, cap: int, url: str) -> None:
    """Refuse a reply whose ``Content-Length`` already says it is over ``cap``.

    Raises:
        TooLargeError: the declared length exceeds ``cap``.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLargeError(f"{url}: declares {declared} bytes, more than {cap}")


def check_audio_content_type(content_type: str, url: str) -> None:
    """Refuse a download served as a type that is never audio (text, images, documents).

    Raises:
        NotAudioError: the media type names a document, not audio.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type.startswith(_NOT_AUDIO_TYPES) or any(
        marker in media_type for marker in _NOT_AUDIO_MARKERS
    ):
        raise NotAudioError(f"{url}: served as {media_type!r}, not audio")
