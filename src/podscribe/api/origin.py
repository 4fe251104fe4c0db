"""The base URL links are built on (job links, the OpenAPI ``servers`` entry).

``PODSCRIBE_PUBLIC_BASE_URL`` wins whenever it is set: nothing a caller sends can then change a
link. Without it the request's own origin is used, and forwarded headers are believed only as
far as ``settings.proxy_hops`` trusted proxies reach, exactly like ``X-Forwarded-For`` in
:func:`~podscribe.api.validation.client_ip`:

* with no trusted proxy (the local profile), ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are
  whatever the client chose and are ignored. The scheme is then ``http``: functions-framework
  never terminates TLS itself, so https exists only behind a proxy. (This also discards the
  scheme gunicorn derives from ``X-Forwarded-Proto`` for loopback peers.)
* behind ``n`` trusted proxies, each appending to the header, the entry ``n`` from the end is
  the one the outermost trusted proxy wrote; entries further left are the client's claims.

A ``Host`` that is not a plain ``host[:port]`` falls back to the server's own name and port.
"""

from __future__ import annotations

import re

from werkzeug.wrappers import Request

from podscribe.settings import ApiSettings

__all__ = ["base_url"]

_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_SCHEMES = frozenset({"http", "https"})


def _trusted_entry(request: Request, header: str, proxy_hops: int) -> str | None:
    """The value the outermost trusted proxy appended to ``header``, if it is there."""
    if proxy_hops <= 0:
        return None
    entries = [
        part.strip()
        for value in request.headers.getlist(header)
        for part in value.split(",")
        if part.strip()
    ]
    return entries[-proxy_hops] if len(entries) >= proxy_hops else None


def base_url(request: Request, settings: ApiSettings) -> str:
    """Scheme, host and any path prefix that links start with (no trailing slash).

    Args:
        request: the HTTP request.
        settings: ``public_base_url`` and ``proxy_hops`` are read.

    Returns:
        ``PODSCRIBE_PUBLIC_BASE_URL`` when set, else the origin the request reached.
    """
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    hops = settings.proxy_hops
    scheme = (_trusted_entry(request, "X-Forwarded-Proto", hops) or "").lower()
    if scheme not in _SCHEMES:
        scheme = "http"
    host = _trusted_entry(request, "X-Forwarded-Host", hops) or request.headers.get("Host", "")
    if not _HOST.match(host):
        server, port = (
            request.environ.get("SERVER_NAME", "localhost"),
            request.environ.get("SERVER_PORT", ""),
        )
        host = f"{server}:{port}" if port and port not in ("80", "443") else str(server)
    return f"{scheme}://{host}"
