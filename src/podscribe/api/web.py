"""The web app's files, served by submit: ``GET /`` is the page, ``GET /assets/<name>`` its
scripts and style sheet.

Only the names in :data:`MANIFEST` are served, each with its own content type: a name is a key
looked up in a fixed table, never a path joined onto a folder, so nothing outside the
package's ``web/`` folder can be reached (``..``, encoded slashes and the like are simply not
in the table and answer the API's 404 problem). The files are package data
(``podscribe/web/``, shipped in the wheel and the function bundles), read once through
:mod:`importlib.resources` and kept in memory with their ETag.

The page is answered ``Cache-Control: no-cache`` (always revalidated, so a deploy shows at
once); the assets are fresh for :data:`ASSET_MAX_AGE_SECONDS` and then revalidated by ETag.
The security headers (CSP and the rest) are added to every response by the API, these too.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from werkzeug.wrappers import Request, Response

from podscribe.errors import RouteNotFoundError

__all__ = [
    "ASSET_MAX_AGE_SECONDS",
    "ASSET_PREFIX",
    "INDEX",
    "MANIFEST",
    "Asset",
    "asset",
    "asset_response",
]

INDEX = "index.html"
ASSET_PREFIX = "/assets/"
ASSET_MAX_AGE_SECONDS = 300
"""How long a browser reuses a script or the style sheet before revalidating it."""

_JS = "text/javascript; charset=utf-8"
MANIFEST: dict[str, str] = {
    INDEX: "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "app.js": _JS,
    "api.js": _JS,
    "dom.js": _JS,
    "jobs.js": _JS,
    "library.js": _JS,
    "reader.js": _JS,
    "search.js": _JS,
}
"""Every file the web app serves, with its content type (tests keep it equal to the folder)."""


@dataclass(frozen=True)
class Asset:
    """One served file.

    Attributes:
        name: its name in :data:`MANIFEST`.
        body: its bytes.
        content_type: its ``Content-Type``.
        etag: a strong ETag of its bytes (unquoted).
        cache_control: its ``Cache-Control``.
    """

    name: str
    body: bytes
    content_type: str
    etag: str
    cache_control: str


@functools.cache
def asset(name: str) -> Asset:
    """The file called ``name``, read once.

    Raises:
        RouteNotFoundError: ``name`` is not in :data:`MANIFEST` (404 ``not_found``).
    """
    content_type = MANIFEST.get(name)
    if content_type is None:
        raise RouteNotFoundError(f"no resource at {ASSET_PREFIX}{name}")
    body = resources.files("podscribe").joinpath("web", name).read_bytes()
    cache_control = (
        "no-cache" if name == INDEX else f"public, max-age={ASSET_MAX_AGE_SECONDS}, must-revalidate"
    )
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Asset(name, body, content_type, digest, cache_control)


def asset_response(request: Request, name: str) -> Response:
    """Answer a request for one web app file: 200 with it, or 304 when the ETag matches.

    Args:
        request: the request (its ``If-None-Match`` is honoured).
        name: the file's name in :data:`MANIFEST`.

    Raises:
        RouteNotFoundError: no such file.
    """
    served = asset(name)
    headers = {"Cache-Control": served.cache_control, "ETag": f'"{served.etag}"'}
    if served.etag in request.if_none_match:
        return Response(status=304, headers=headers)
    return Response(served.body, status=200, content_type=served.content_type, headers=headers)
