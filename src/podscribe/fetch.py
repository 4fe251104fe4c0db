"""Fetching on a user's behalf, through the SSRF guard.

:class:`PinnedTransport` is an httpx transport that asks :func:`podscribe.net_guard.check_url`
about every request and then opens a connection to one of the addresses that check approved:
httpcore is handed a network backend that ignores the host name when connecting, so no second
DNS lookup happens and a rebinding answer never reaches a socket. TLS still uses the URL's
host name for SNI and certificate verification.

:class:`SafeFetcher` wraps an httpx client on that transport with ``follow_redirects=False``
and runs its own redirect loop: each ``Location`` is checked as written, then re-resolved and
re-checked by the transport, with a hop limit and loop detection. Bodies are capped in bytes,
total time and idle time; audio is streamed to disk and sniffed before it is trusted.
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
from typing import Any
from urllib.parse import urljoin

import certifi
import httpcore
import httpx

from podscribe.audio_sniff import describe_non_audio, detect_audio_format
from podscribe.errors import (
    DownloadRefusedError,
    FetchFailedError,
    FetchTimeoutError,
    NotAudioError,
    PodscribeError,
    TlsVerificationError,
    TooLargeError,
    TooManyRedirectsError,
    UpstreamStatusError,
    UpstreamThrottledError,
)
from podscribe.net_guard import Resolver, check_spelling, check_url
from podscribe.settings import Settings

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
# Content types that are never audio; anything else is decided by the first bytes.
_NOT_AUDIO_TYPES = ("text/", "image/", "multipart/", "font/")
_NOT_AUDIO_MARKERS = ("json", "xml", "html", "javascript", "pdf", "mpegurl", "zip")


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


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to checked addresses, whatever host name httpcore asks for."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self._addresses = addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in self._addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        raise failure or httpcore.ConnectError("no checked address to connect to")


class _PinnedStream(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response, connection: httpcore.HTTPConnection) -> None:
        self._response = response
        self._connection = connection

    def __iter__(self) -> Iterator[bytes]:
        with _mapped_errors():
            yield from self._response.iter_stream()

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._connection.close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport that only connects where the SSRF guard allowed.

    Args:
        settings: guard configuration (ports, the local escape hatch).
        resolver: name resolution for the guard; default the system's.
        ssl_context: TLS configuration; it must verify certificates and host names.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = ssl_context or ssl.create_default_context(cafile=certifi.where())
        if not context.check_hostname or context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the SSL context must verify certificates and host names")
        self._settings = settings
        self._resolver = resolver
        self._ssl_context = context

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        decision = check_url(url, self._settings, resolver=self._resolver)
        if not decision.allowed:
            raise DownloadRefusedError(f"refused to fetch {url}: {decision.reason}")
        origin = httpcore.Origin(request.url.raw_scheme, request.url.raw_host, decision.port)
        connection = httpcore.HTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            network_backend=_PinnedBackend(decision.addresses),
        )
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=decision.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            # SNI always follows the URL's host: a caller-supplied override is dropped.
            extensions={k: v for k, v in request.extensions.items() if k != "sni_hostname"},
        )
        try:
            with _mapped_errors():
                response = connection.handle_request(core_request)
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PinnedStream(response, connection),
            extensions=response.extensions,
        )


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """httpcore's exceptions become podscribe's (the caller sees only ours)."""
    try:
        yield
    except httpcore.TimeoutException as error:
        raise FetchTimeoutError(f"timed out ({type(error).__name__})") from error
    except httpcore.ConnectError as error:
        if _caused_by(error, ssl.SSLCertVerificationError):
            raise TlsVerificationError(f"TLS certificate refused: {error}") from error
        raise FetchFailedError(f"could not connect: {error}") from error
    except httpcore.UnsupportedProtocol as error:
        raise DownloadRefusedError(f"unsupported protocol: {error}") from error
    except (httpcore.NetworkError, httpcore.ProtocolError) as error:
        raise FetchFailedError(f"connection failed: {type(error).__name__}: {error}") from error


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SafeFetcher:
    """The one way podscribe fetches a URL a user gave it (directly or via Apple or a feed).

    Args:
        settings: caps (bytes, time, redirects) and guard configuration.
        resolver: name resolution for the guard; default the system's.
        ssl_context: TLS configuration (tests pass one trusting a throwaway CA).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        # trust_env=False: proxy variables would mount transports that bypass the guard.
        self._client = httpx.Client(
            transport=PinnedTransport(settings, resolver=resolver, ssl_context=ssl_context),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": _USER_AGENT},
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
            TooLargeError: the body exceeds the cap.
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
            _raise_for_status(response, final_url)
            _check_declared_length(response, cap, final_url)
            body = bytearray()
            for chunk in self._chunks(response, deadline):
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
                _raise_for_status(response, final_url)
                content_type = response.headers.get("content-type", "")
                _check_audio_content_type(content_type, final_url)
                _check_declared_length(response, cap, final_url)
                size, audio_format = self._stream_to(partial, response, deadline, cap, final_url)
            os.replace(partial, destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return DownloadedAudio(destination, final_url, content_type, size, audio_format)

    def post_json(
        self, url: str, body: bytes, *, headers: dict[str, str] | None = None, timeout: float
    ) -> int:
        """POST a JSON body (a webhook) through the guard; redirects are not followed.

        Returns:
            The response status (2xx; the body is read, capped, and dropped).

        Raises:
            UpstreamStatusError: a 3xx or 4xx answer; redirects are not followed (a webhook
                receiver has no reason to redirect, and a redirected POST is an SSRF trick).
            DownloadRefusedError, FetchTimeoutError, FetchFailedError, TlsVerificationError:
                as for :meth:`get_document`.
        """
        _check_spelling(url)
        deadline = time.monotonic() + timeout
        sent = {"Content-Type": "application/json", **(headers or {})}
        response = self._send(url, sent, deadline, method="POST", content=body)
        with contextlib.closing(response):
            received = 0
            for chunk in self._chunks(response, deadline):
                received += len(chunk)
                if received > _WEBHOOK_RESPONSE_BYTES:
                    break
        _raise_for_status(response, url)  # 429 and 5xx are transient: worth another try
        return response.status_code

    def _stream_to(
        self, partial: Path, response: httpx.Response, deadline: float, cap: int, url: str
    ) -> tuple[int, str]:
        size = 0
        head = b""
        audio_format: str | None = None
        with partial.open("wb") as sink:
            for chunk in self._chunks(response, deadline):
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
                method, url, headers=headers, content=content, timeout=wait
            )
            return self._client.send(request, stream=True)
        except PodscribeError:
            raise
        except httpx.InvalidURL as error:
            raise DownloadRefusedError(f"refused to fetch {url}: {error}") from error
        except httpx.HTTPError as error:
            raise FetchFailedError(f"{url}: {type(error).__name__}: {error}") from error

    def _chunks(self, response: httpx.Response, deadline: float) -> Iterator[bytes]:
        """The body, decoded, enforcing the total deadline between chunks."""
        try:
            for chunk in response.iter_bytes():
                if time.monotonic() > deadline:
                    raise FetchTimeoutError(f"{response.request.url}: total time ran out")
                yield chunk
        except PodscribeError:
            raise
        except httpx.HTTPError as error:
            raise FetchFailedError(f"{response.request.url}: {error}") from error


def _check_spelling(url: str) -> None:
    reason = check_spelling(url)
    if reason is not None:
        raise DownloadRefusedError(f"refused to fetch {url}: {reason}")


def _join(base: str, location: str) -> str:
    try:
        return str(httpx.URL(base).join(location))
    except (httpx.InvalidURL, ValueError) as error:
        raise DownloadRefusedError(f"unusable redirect Location {location!r}: {error}") from None


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise UpstreamThrottledError(
            f"{url}: 429 Too Many Requests", retry_after=_retry_after(response)
        )
    if status >= 500:
        raise FetchFailedError(f"{url}: server error {status}")
    raise UpstreamStatusError(f"{url}: HTTP {status}", status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _check_declared_length(response: httpx.Response, cap: int, url: str) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLargeError(f"{url}: declares {declared} bytes, more than {cap}")


def _check_audio_content_type(content_type: str, url: str) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type.startswith(_NOT_AUDIO_TYPES) or any(
        marker in media_type for marker in _NOT_AUDIO_MARKERS
    ):
        raise NotAudioError(f"{url}: served as {media_type!r}, not audio")


def _sniff(head: bytes, url: str) -> str:
    audio_format = detect_audio_format(head)
    if audio_format is None or describe_non_audio(head).startswith("the server sent"):
        raise NotAudioError(f"{url}: {describe_non_audio(head)}")
    return audio_format
