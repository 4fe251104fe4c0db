"""The security headers every answer of submit carries: page, API, problems, framework errors.

One policy for everything served from the origin (the web page at ``/`` and the API share it,
so a browser holds every response to the same rules): a Content-Security-Policy that lets the
page load only its own scripts, styles, fonts and images and talk only to its own origin, with
no inline script or style, no ``eval``, no plugins, no ``<base>``, no framing and forms posting
only home; media from ``https:`` only, the episode audio being on the podcast's own host.
Violations are reported to ``POST /v1/csp-reports`` (``report-uri`` for browsers of the old
API, ``report-to`` with ``Reporting-Endpoints`` for the Reporting API).

Under ``PODSCRIBE_ENV=local`` the loopback stand-ins of ``PODSCRIBE_SSRF_ALLOW`` serve the demo
episode's audio over plain ``http``, so ``media-src`` names each of them as well; no other
environment accepts that variable (the settings refuse it), so no other gets the extras.
``Strict-Transport-Security`` is sent in production only: elsewhere submit is plain HTTP on a
developer's machine, where pinning HTTPS for ``localhost`` would break every other local site.

Share links (``/t/<token>.<ext>``, :mod:`podscribe.api.share_links`) are the one exception,
and only in two headers: they are meant to be loaded by players and pages of any origin, so a
:class:`SharedResourceResponse` answers ``Cross-Origin-Resource-Policy: cross-origin`` and a
policy that allows no script, no fetch and no form at all (:data:`SHARED_RESOURCE_POLICY`).

:func:`apply_security_headers` is called in exactly two places, the API's entry point and the
handler of errors functions-framework raises before it, so no response leaves without them.
The k3s nginx front end (``local_emulators/k3s/frontend.yaml``) sets the same list.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ClassVar

from werkzeug.wrappers import Response

from podscribe.errors import PodscribeError
from podscribe.settings import FetchSettings

__all__ = [
    "CSP_REPORT_GROUP",
    "CSP_REPORT_PATH",
    "SHARED_RESOURCE_POLICY",
    "SharedResourceResponse",
    "apply_security_headers",
    "content_security_policy",
    "security_headers",
]

log = logging.getLogger(__name__)

CSP_REPORT_PATH = "/v1/csp-reports"
"""Where browsers send violation reports (same origin: ``connect-src 'self'`` covers it)."""
CSP_REPORT_GROUP = "csp"
"""The Reporting API endpoint name ``report-to`` refers to (``Reporting-Endpoints``)."""
HSTS = "max-age=63072000; includeSubDomains"
"""Two years, as browsers' preload lists ask; production only (see the module docstring)."""

_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # frame-ancestors 'none' is the rule; this is for browsers that predate it.
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Reporting-Endpoints": f'{CSP_REPORT_GROUP}="{CSP_REPORT_PATH}"',
}


SHARED_RESOURCE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)
"""A share link's Content-Security-Policy: its HTML may be styled, nothing in it runs."""


class SharedResourceResponse(Response):
    """An answer any origin may load (a share link's transcript); see the module docstring."""

    security_overrides: ClassVar[dict[str, str]] = {
        "Content-Security-Policy": SHARED_RESOURCE_POLICY,
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


def content_security_policy(media_extras: tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy (the contract shared with the web page).

    Args:
        media_extras: more ``media-src`` sources (the local profile's loopback audio).

    Returns:
        The header value.
    """
    media = " ".join(("https:", *media_extras))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; "
        f"report-uri {CSP_REPORT_PATH}; report-to {CSP_REPORT_GROUP}"
    )


def security_headers(settings: FetchSettings | None) -> dict[str, str]:
    """Every security header, as ``settings`` shape them.

    Args:
        settings: ``env`` and ``ssrf_allow`` are read; None (the configuration could not be
            read) gives the strictest set: no local extras and no HSTS.

    Returns:
        Header names to values (a fresh dict the caller may change).
    """
    if settings is None:
        return dict(_headers("test", ()))
    return dict(_headers(settings.env, tuple(settings.ssrf_allow)))


@functools.lru_cache(maxsize=8)
def _headers(env: str, ssrf_allow: tuple[str, ...]) -> dict[str, str]:
    # Cached: the same few strings for every response of a process.
    extras = tuple(f"http://{pair}" for pair in ssrf_allow) if env == "local" else ()
    headers = {"Content-Security-Policy": content_security_policy(extras), **_STATIC_HEADERS}
    if env == "production":
        headers["Strict-Transport-Security"] = HSTS
    return headers


def apply_security_headers(
    response: Response, settings: Callable[[], FetchSettings] | None = None
) -> Response:
    """Set every security header on ``response`` (replacing any copy it had; a
    :class:`SharedResourceResponse` gets its own two).

    Args:
        response: the answer about to leave.
        settings: returns the settings; when it raises (the configuration is invalid), the
            strictest set is sent rather than no headers at all.

    Returns:
        ``response``, changed in place.
    """
    current: FetchSettings | None = None
    if settings is not None:
        try:
            current = settings()
        except Exception as error:  # noqa: BLE001 - the answer must leave, with headers
            detail = error.message if isinstance(error, PodscribeError) else repr(error)
            log.warning("security headers without settings", extra={"error": detail})
    overrides = response.security_overrides if isinstance(response, SharedResourceResponse) else {}
    for name, value in security_headers(current).items():
        response.headers[name] = overrides.get(name, value)
    return response
