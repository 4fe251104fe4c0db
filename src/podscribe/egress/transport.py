"""The httpx transport behind ``SafeFetcher``: connections to checked addresses only.

:class:`PinnedTransport` asks :func:`podscribe.egress.guard.check_url` about every request and
then opens a connection to one of the addresses that check approved: httpcore is handed a
network backend that ignores the host name when connecting, so no second DNS lookup happens
and a rebinding answer never reaches a socket. TLS still uses the URL's host name for SNI and
certificate verification.

Every socket operation also runs under a per-request budget: a total deadline (the request
extension ``podscribe.deadline``, a ``time.monotonic()`` value) and a cap on the bytes of the
response head. httpcore's timeouts are per operation, so a server sending one header byte
per second would otherwise never time out; here each connect, handshake, read and write
waits at most until the deadline, and the head may not grow past :data:`MAX_HEAD_BYTES`.
Lower-level errors become podscribe's.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator
from typing import Any

import certifi
import httpcore
import httpx

from podscribe.egress.guard import Resolver, check_url
from podscribe.errors import (
    DownloadRefusedError,
    FetchFailedError,
    FetchTimeoutError,
    TlsVerificationError,
    TooLargeError,
)
from podscribe.settings import FetchSettings

__all__ = ["DEADLINE_EXTENSION", "MAX_HEAD_BYTES", "GuardedTransport", "PinnedTransport"]

#: The request extension holding the fetch's total deadline (``time.monotonic()`` seconds).
DEADLINE_EXTENSION = "podscribe.deadline"
#: Status line plus headers of one response. Real ones are a few KiB; h11's own limit
#: (100 KiB in httpcore) would end a larger head only as an anonymous protocol error.
MAX_HEAD_BYTES = 64 * 1024
# A request body is written in pieces so each waits only for what is left of the deadline.
_WRITE_PIECE = 64 * 1024


class _Budget:
    """What one request may still spend: time until the deadline, bytes of response head."""

    def __init__(self, url: str, deadline: float | None) -> None:
        self.url = url
        self.deadline = deadline
        self.head_bytes_left = MAX_HEAD_BYTES
        self.in_head = True

    def timeout(self, idle: float | None) -> float | None:
        """The wait for one operation: the idle timeout, shortened to the time left."""
        if self.deadline is None:
            return idle
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeoutError(f"{self.url}: total time ran out")
        return remaining if idle is None else min(idle, remaining)

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """A timeout that the deadline cut short is reported as the deadline."""
        try:
            yield
        except httpcore.TimeoutException as error:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise FetchTimeoutError(f"{self.url}: total time ran out") from error
            raise


class _BudgetedStream(httpcore.NetworkStream):
    """A network stream whose every operation is bounded by the request's :class:`_Budget`."""

    def __init__(self, inner: httpcore.NetworkStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = self._budget
        if budget.in_head:
            # h11 asks for more only while the head is incomplete: once everything read so
            # far is head, the head is larger than the cap.
            if budget.head_bytes_left <= 0:
                raise TooLargeError(
                    f"{budget.url}: response headers larger than {MAX_HEAD_BYTES} bytes"
                )
            max_bytes = min(max_bytes, budget.head_bytes_left)
        with budget.timed():
            data = self._inner.read(max_bytes, budget.timeout(timeout))
        if budget.in_head:
            budget.head_bytes_left -= len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_PIECE):
            with self._budget.timed():
                self._inner.write(
                    buffer[start : start + _WRITE_PIECE], self._budget.timeout(timeout)
                )

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with self._budget.timed():
            tls = self._inner.start_tls(ssl_context, server_hostname, self._budget.timeout(timeout))
        return _BudgetedStream(tls, self._budget)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to checked addresses, whatever host name httpcore asks for."""

    def __init__(self, addresses: tuple[str, ...], budget: _Budget) -> None:
        self._addresses = addresses
        self._budget = budget

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
                with self._budget.timed():
                    stream = super().connect_tcp(
                        address, port, self._budget.timeout(timeout), local_address, socket_options
                    )
                return _BudgetedStream(stream, self._budget)
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
        settings: FetchSettings,
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
        deadline = request.extensions.get(DEADLINE_EXTENSION)
        budget = _Budget(url, float(deadline) if deadline is not None else None)
        origin = httpcore.Origin(request.url.raw_scheme, request.url.raw_host, decision.port)
        connection = httpcore.HTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            network_backend=_PinnedBackend(decision.addresses, budget),
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
            extensions={
                key: value
                for key, value in request.extensions.items()
                if key not in ("sni_hostname", DEADLINE_EXTENSION)
            },
        )
        try:
            with _mapped_errors():
                response = connection.handle_request(core_request)
        except BaseException:
            connection.close()
            raise
        budget.in_head = False
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PinnedStream(response, connection),
            extensions=response.extensions,
        )


class GuardedTransport(httpx.BaseTransport):
    """Any transport, behind the SSRF guard: a request the guard refuses never reaches it.

    What :class:`SafeFetcher` puts in front of an injected transport (an ``httpx.MockTransport``
    in tests), so that injection cannot skip the check that :class:`PinnedTransport` makes.
    Only the pinned transport also connects to the checked address; this one cannot, since the
    inner transport does its own connecting.

    Args:
        inner: what sends the request once the guard allowed it.
        settings: guard configuration (ports, the local escape hatch).
        resolver: name resolution for the guard; default the system's.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        settings: FetchSettings,
        *,
        resolver: Resolver | None = None,
    ) -> None:
        self._inner = inner
        self._settings = settings
        self._resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        decision = check_url(url, self._settings, resolver=self._resolver)
        if not decision.allowed:
            raise DownloadRefusedError(f"refused to fetch {url}: {decision.reason}")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


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
