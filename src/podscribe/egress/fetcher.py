"""Fetching on a user's behalf, through the SSRF guard.

:class:`SafeFetcher` wraps an httpx client on :class:`~podscribe.egress.transport.PinnedTransport`
(connections only to addresses the guard checked) with ``follow_redirects=False`` and runs its
own redirect loop: each ``Location`` is checked as written, then re-resolved and re-checked by
the transport, with a hop limit and loop detection. A test may inject another transport
(``httpx.MockTransport``); the guard is then put in front of it, so every hop is still checked.

Caps hold whatever a server does. Each fetch has one total deadline, from the first connect
to the last byte, enforced on every socket operation (headers included) by the transport,
which also caps the response head. Bodies are read raw and decoded here by a
:class:`~podscribe.egress.content_coding.BoundedDecoder`, so the byte caps count decoded bytes as
they are produced and a compression bomb stops at the cap; documents may be gzip or deflate
coded, audio and webhook replies not at all. Audio is streamed to disk and sniffed before it
is trusted.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin

import httpx

from podscribe.egress.content_coding import ACCEPT_ENCODING, BoundedDecoder, Coding
from podscribe.egress.guard import Resolver, check_spelling
from podscribe.egress.replies import (
    check_audio_content_type,
    check_declared_length,
    raise_for_status,
    reply_coding,
)
from podscribe.egress.sniffing import sniff_audio
from podscribe.egress.transport import DEADLINE_EXTENSION, GuardedTransport, PinnedTransport
from podscribe.errors import (
    DownloadRefusedError,
    FetchFailedError,
    FetchTimeoutError,
    NotAudioError,
    PodscribeError,
    TooLargeError,
    TooManyRedirectsError,
    UpstreamStatusError,
)
from podscribe.settings import FetchSettings

__all__ = [
    "DownloadedAudio",
    "FetchedDocument",
    "PinnedTransport",
    "SafeFetcher",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_WEBHOOK_RESPONSE_BYTES = 64 * 1024
_SNIFF_BYTES = 16
_USER_AGENT = "podscribe/0.1 (+https://github.com/podscribe)"
# Documents may come compressed; audio and webhook replies are taken only as sent (a coded
# MP3 is already compressed, and a webhook reply is dropped unread beyond a few KiB).
_DOCUMENT_CODINGS: frozenset[Coding] = frozenset({"gzip", "deflate"})
_NO_CODINGS: frozenset[Coding] = frozenset()


@dataclass(frozen=True)
class FetchedDocument:
    """A small document (lookup answer, episode page, feed), fully read.

    Attributes:
        url: the final URL, after redirects.
        status: the HTTP status of the final response.
        content_type: the Content-Type header ("" when absent).
        content: the decoded body.
    """

    url: str
    status: int
    content_type: str
    content: bytes


@dataclass(frozen=True)
class DownloadedAudio:
    """An audio file streamed to disk.

    Attributes:
        path: where it was written.
        final_url: the URL it came from, after redirects.
        content_type: the Content-Type header ("" when absent).
        size_bytes: bytes written.
        audio_format: the container recognised from the first bytes (``mp3``, ``mp4``, ...).
    """

    path: Path
    final_url: str
    content_type: str
    size_bytes: int
    audio_format: str


class SafeFetcher:
    """The one way podscribe fetches a URL a user gave it (directly or via Apple or a feed).

    Args:
        settings: caps (bytes, time, redirects) and guard configuration.
        resolver: name resolution for the guard; default the system's.
        ssl_context: TLS configuration (tests pass one trusting a throwaway CA).
        transport: what sends each hop's request instead of the pinned transport (an
            ``httpx.MockTransport`` in tests). It is wrapped in a
            :class:`~podscribe.egress.transport.GuardedTransport`, so the guard still checks
            every hop's URL and resolved addresses before the request reaches it.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        sender: httpx.BaseTransport = (
            PinnedTransport(settings, resolver=resolver, ssl_context=ssl_context)
            if transport is None
            else GuardedTransport(transport, settings, resolver=resolver)
        )
        # trust_env=False: proxy variables would mount transports that bypass the guard.
        self._client = httpx.Client(
            transport=sender,
            follow_redirects=False,
            trust_env=False,
            # Only codings we decode ourselves; httpx would add br if a Brotli package appeared.
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        )

    def __enter__(self) -> SafeFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP client."""
        self._client.close()

    def get_document(
        self, url: str, *, max_bytes: int | None = None, accept: str | None = None
    ) -> FetchedDocument:
        """Fetch a small document whole, following checked redirects.

        Args:
            url: where to fetch from.
            max_bytes: size cap; default ``settings.max_document_bytes``.
            accept: the Accept header to send.

        Returns:
            The final response's URL, status, content type and body.

        Raises:
            DownloadRefusedError: the guard refused a hop.
            TooManyRedirectsError: a redirect loop or more hops than ``max_redirects``.
            TooLargeError: the decoded body exceeds the cap, or the headers exceed theirs.
            UnsafeDocumentError: a content coding that is stacked or that we cannot decode.
            FetchTimeoutError: idle or total time ran out (transient).
            FetchFailedError: connection failure or a 5xx answer (transient).
            UpstreamStatusError: a 4xx answer (429: UpstreamThrottledError, transient).
            TlsVerificationError: the certificate does not verify for the host.
        """
        cap = max_bytes if max_bytes is not None else self._settings.max_document_bytes
        deadline = time.monotonic() + self._settings.document_timeout_seconds
        headers = {"Accept": accept} if accept else {}
        response, final_url = self._open(url, headers, deadline)
        with contextlib.closing(response):
            raise_for_status(response, final_url)
            coding = reply_coding(response, _DOCUMENT_CODINGS, final_url)
            check_declared_length(response, cap, final_url)
            body = bytearray()
            for chunk in self._chunks(response, deadline, coding):
                body += chunk
                if len(body) > cap:
                    raise TooLargeError(f"{final_url}: document larger than {cap} bytes")
        return FetchedDocument(
            final_url, response.status_code, response.headers.get("content-type", ""), bytes(body)
        )

    def download_audio(self, url: str, destination: Path) -> DownloadedAudio:
        """Stream an audio file to disk, checking that it is audio.

        The body goes to ``destination`` plus ``.part`` first and is renamed once complete,
        so a failed download never leaves a plausible-looking file behind.

        Args:
            url: the audio URL (an enclosure or Apple's ``episodeUrl``).
            destination: the file to write.

        Returns:
            Where it was written, from where, its content type, size and format.

        Raises:
            NotAudioError: the content type or the first bytes say it is not audio.
            TooLargeError: more than ``settings.max_download_bytes``.
            UnsafeDocumentError: the reply is content-coded (gzip or any other).
            DownloadRefusedError, TooManyRedirectsError, FetchTimeoutError, FetchFailedError,
            UpstreamStatusError, TlsVerificationError: as for :meth:`get_document`.
        """
        cap = self._settings.max_download_bytes
        deadline = time.monotonic() + self._settings.download_timeout_seconds
        headers = {"Accept": "audio/*, video/*;q=0.5, */*;q=0.1", "Accept-Encoding": "identity"}
        partial = destination.with_name(destination.name + ".part")
        response, final_url = self._open(url, headers, deadline)
        try:
            with contextlib.closing(response):
                raise_for_status(response, final_url)
                content_type = response.headers.get("content-type", "")
                check_audio_content_type(content_type, final_url)
                check_declared_length(response, cap, final_url)
                coding = reply_coding(response, _NO_CODINGS, final_url)
                size, audio_format = self._stream_to(
                    partial, response, deadline, cap, final_url, coding=coding
                )
            os.replace(partial, destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return DownloadedAudio(destination, final_url, content_type, size, audio_format)

    def probe_audio(self, url: str) -> str:
        """Check, without downloading it, that a URL serves audio: what dispatch asks before
        it pays for a GPU.

        The same request as :meth:`download_audio` (the guard on every hop, the status, the
        content type and declared length), but only the first bytes are read, to sniff.

        Returns:
            The container the first bytes show (``mp3``, ``mp4``, ...).

        Raises:
            Whatever :meth:`download_audio` raises for the same reply.
        """
        cap = self._settings.max_download_bytes
        deadline = time.monotonic() + self._settings.document_timeout_seconds
        headers = {"Accept": "audio/*, video/*;q=0.5, */*;q=0.1", "Accept-Encoding": "identity"}
        response, final_url = self._open(url, headers, deadline)
        with contextlib.closing(response):
            raise_for_status(response, final_url)
            check_audio_content_type(response.headers.get("content-type", ""), final_url)
            check_declared_length(response, cap, final_url)
            coding = reply_coding(response, _NO_CODINGS, final_url)
            head = b""
            for chunk in self._chunks(response, deadline, coding):
                head += chunk
                if len(head) >= _SNIFF_BYTES:
                    break
            return _sniff(head, final_url)

    def post_json(
        self, url: str, body: bytes, *, headers: dict[str, str] | None = None, timeout: float
    ) -> int:
        """POST a JSON body (a webhook) through the guard; redirects are not followed.

        Returns:
            The response status (2xx; the body is read, capped, and dropped).

        Raises:
            UpstreamStatusError: a 3xx or 4xx answer; redirects are not followed (a webhook
                receiver has no reason to redirect, and a redirected POST is an SSRF trick).
            UnsafeDocumentError: a 2xx reply that is content-coded.
            DownloadRefusedError, FetchTimeoutError, FetchFailedError, TooLargeError (headers),
            TlsVerificationError: as for :meth:`get_document`.
        """
        _check_spelling(url)
        deadline = time.monotonic() + timeout
        sent = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            **(headers or {}),
        }
        response = self._send(url, sent, deadline, method="POST", content=body)
        with contextlib.closing(response):
            raise_for_status(response, url)  # 429 and 5xx are transient: worth another try
            coding = reply_coding(response, _NO_CODINGS, url)
            received = 0
            for chunk in self._chunks(response, deadline, coding):
                received += len(chunk)
                if received > _WEBHOOK_RESPONSE_BYTES:
                    break
        return response.status_code

    def _stream_to(
        self,
        partial: Path,
        response: httpx.Response,
        deadline: float,
        cap: int,
        url: str,
        *,
        coding: Coding,
    ) -> tuple[int, str]:
        size = 0
        head = b""
        audio_format: str | None = None
        with partial.open("wb") as sink:
            for chunk in self._chunks(response, deadline, coding):
                size += len(chunk)
                if size > cap:
                    raise TooLargeError(f"{url}: audio larger than {cap} bytes")
                if audio_format is not None:
                    sink.write(chunk)
                    continue
                head += chunk
                if len(head) >= _SNIFF_BYTES:
                    audio_format = _sniff(head, url)
                    sink.write(head)
                    head = b""
            if audio_format is None:
                audio_format = _sniff(head, url)
                sink.write(head)
        return size, audio_format

    def _open(
        self, url: str, headers: dict[str, str], deadline: float
    ) -> tuple[httpx.Response, str]:
        """Send GET, following redirects ourselves; return the final response, streaming."""
        visited = {url}
        _check_spelling(url)
        for _hop in range(self._settings.max_redirects + 1):
            response = self._send(url, headers, deadline)
            if response.status_code not in _REDIRECTS:
                return response, url
            location = response.headers.get("location")
            response.close()
            if not location:
                raise UpstreamStatusError(
                    f"{url}: redirect without a Location", response.status_code
                )
            # Judge the Location as the server wrote it, before httpx normalises it.
            _check_spelling(urljoin(url, location.strip()))
            url = _join(url, location)
            if url in visited:
                raise TooManyRedirectsError(f"redirect loop back to {url}")
            visited.add(url)
        raise TooManyRedirectsError(
            f"more than {self._settings.max_redirects} redirects (last: {url})"
        )

    def _send(
        self,
        url: str,
        headers: dict[str, str],
        deadline: float,
        *,
        method: str = "GET",
        content: bytes | None = None,
    ) -> httpx.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeoutError(f"{url}: total time ran out")
        wait = min(self._settings.idle_timeout_seconds, remaining)
        try:
            request = self._client.build_request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=wait,
                extensions={DEADLINE_EXTENSION: deadline},
            )
            return self._client.send(request, stream=True)
        except PodscribeError:
            raise
        except httpx.InvalidURL as error:
            raise DownloadRefusedError(f"refused to fetch {url}: {error}") from error
        except httpx.HTTPError as error:
            raise FetchFailedError(f"{url}: {type(error).__name__}: {error}") from error

    def _chunks(self, response: httpx.Response, deadline: float, coding: Coding) -> Iterator[bytes]:
        """The body, decoded a bounded piece at a time, enforcing the total deadline.

        Pieces are produced only as the caller asks, so a cap it checks after each piece
        holds at most one piece beyond the cap in memory, whatever the compression ratio.
        """
        url = str(response.request.url)
        decoder = BoundedDecoder(coding, url=url)
        try:
            for raw in response.iter_raw():
                for piece in decoder.decode(raw):
                    if time.monotonic() > deadline:
                        raise FetchTimeoutError(f"{url}: total time ran out")
                    yield piece
            decoder.finish()
        except PodscribeError:
            raise
        except httpx.HTTPError as error:
            raise FetchFailedError(f"{url}: {error}") from error


def _check_spelling(url: str) -> None:
    reason = check_spelling(url)
    if reason is not None:
        raise DownloadRefusedError(f"refused to fetch {url}: {reason}")


def _join(base: str, location: str) -> str:
    try:
        return str(httpx.URL(base).join(location))
    except (httpx.InvalidURL, ValueError) as error:
        raise DownloadRefusedError(f"unusable redirect Location {location!r}: {error}") from None


def _sniff(head: bytes, url: str) -> str:
    verdict = sniff_audio(head)
    if not verdict.is_audio or verdict.audio_format is None:
        raise NotAudioError(f"{url}: {verdict.detail}")
    return verdict.audio_format
