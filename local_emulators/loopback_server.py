"""Small threaded HTTP(S) servers on 127.0.0.1 for the local demo, the tests and benchmarks.

A :class:`FixtureServer` binds a port on loopback (never anything else; an ephemeral one
unless told which) and
answers routes registered by path: fixed :class:`Reply` objects, callables that build one
from the :class:`RecordedRequest`, redirects, and replies that trickle or stall to exercise
idle and total timeouts. Every request is recorded, so tests can assert what was (and was
not) asked for.

    with FixtureServer() as server:
        server.route("/feed.xml", Reply(body=feed, content_type="application/rss+xml"))
        fetcher.get_document(server.url("/feed.xml"))
"""

from __future__ import annotations

import contextlib
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LOOPBACK", "FixtureServer", "RecordedRequest", "Reply", "Route", "serving"]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class RecordedRequest:
    """What a client asked a fixture server for."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Reply:
    """One response. ``chunks`` with ``chunk_delay`` trickle the body piece by piece.

    Attributes:
        status: HTTP status.
        body: the whole body (ignored when ``chunks`` is given).
        content_type: the Content-Type header; None sends none.
        headers: more headers.
        chunks: body pieces sent one at a time, ``chunk_delay`` seconds apart.
        chunk_delay: the pause before each chunk (after the headers).
        declare_length: whether to send Content-Length (a close-delimited body otherwise).
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: tuple[bytes, ...] | None = None
    chunk_delay: float = 0.0
    declare_length: bool = True


Route = Reply | Callable[[RecordedRequest], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body
        )
        owner = self.server.owner
        if owner.record_requests:
            owner.requests.append(request)
        route = owner.routes.get(parts.path)
        reply = Reply(status=404, body=b"not found", content_type="text/plain")
        if route is not None:
            reply = route(request) if callable(route) else route
            reply = _ranged(reply, self.headers.get("Range"))
        with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        pieces = reply.chunks if reply.chunks is not None else (reply.body,)
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.declare_length:
            self.send_header("Content-Length", str(sum(len(piece) for piece in pieces)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        if self.command == "HEAD":
            return
        for piece in pieces:
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            self.wfile.write(piece)
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _ranged(reply: Reply, header: str | None) -> Reply:
    """The asked-for bytes (206) of a whole-body 200 when ``Range: bytes=a-b`` asks.

    Browsers seek in audio only on a server that answers ranges (Chromium puts
    ``currentTime`` back to 0 otherwise), as podcast hosts do: the web app's reader needs
    them from the episode audio stand-in. Trickled or unsized replies stay as they are.
    """
    if header is None or reply.status != 200 or reply.chunks is not None:
        return reply
    asked = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not reply.declare_length or asked is None or asked.groups() == ("", ""):
        return reply
    size = len(reply.body)
    first, last = asked.groups()
    start = int(first) if first else max(0, size - int(last))
    end = min(int(last), size - 1) if first and last else size - 1
    if start >= size or start > end:
        return replace(reply, status=416, body=b"", headers={"Content-Range": f"bytes */{size}"})
    ranged = {"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"}
    return replace(
        reply, status=206, body=reply.body[start : end + 1], headers={**reply.headers, **ranged}
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Handlers that trickle must not hold up shutdown.
    block_on_close = False

    def __init__(
        self, owner: FixtureServer, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.owner = owner
        self.ssl_context = ssl_context
        super().__init__((host, port), _Handler)

    def get_request(self) -> tuple[socket, Any]:
        connection, address = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs in the handler thread, on first read.
            connection = self.ssl_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client refusing our certificate, or hanging up early, is what tests do.
        return


class FixtureServer:
    """A loopback HTTP(S) server with routes, for the local demo, tests and benchmarks.

    Args:
        host: the loopback address to bind (``127.0.0.1``; ``127.0.0.2`` etc. work on Linux).
        port: the port to bind; 0 (the default) picks a free one.
        record_requests: keep every request in :attr:`requests` (tests); a long-running
            server (the demo's) passes False so its memory does not grow with traffic.
        ssl_context: serve HTTPS with this server-side context.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        *,
        port: int = 0,
        record_requests: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("fixture servers bind loopback only")
        self.routes: dict[str, Route] = {}
        self.record_requests = record_requests
        self.requests: list[RecordedRequest] = []
        self.sni_names: list[str | None] = []
        self._scheme = "https" if ssl_context else "http"
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni
        self._server = _Server(self, host, port, ssl_context)
        # A short poll keeps stop() quick: tests start and stop hundreds of these.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _record_sni(self, _socket: Any, name: str | None, _context: Any) -> None:
        self.sni_names.append(name)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host_port(self) -> str:
        """``host:port``, the form PODSCRIBE_SSRF_ALLOW takes."""
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """An absolute URL on this server; ``host`` swaps in a name (e.g. ``localhost``)."""
        return f"{self._scheme}://{host or self.host}:{self.port}{path}"

    @property
    def base_url(self) -> str:
        return self.url("")

    def route(self, path: str, reply: Route) -> None:
        self.routes[path] = reply

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, Reply(status=status, content_type=None, headers={"Location": location}))

    def paths_requested(self) -> list[str]:
        return [request.path for request in self.requests]

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(
    *, host: str = LOOPBACK, ssl_context: ssl.SSLContext | None = None
) -> Iterator[FixtureServer]:
    """A started :class:`FixtureServer`, stopped afterwards."""
    server = FixtureServer(host, ssl_context=ssl_context)
    with server:
        yield server
