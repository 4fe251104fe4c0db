"""Share links: ``/v1/transcriptions/{job_id}/links`` for their owner, ``/t/<token>.<ext>`` for
everyone.

The owner (a key with access to a succeeded job) makes, lists and revokes links
(:mod:`podscribe.jobs.share_links`). A link's URLs need no key: podcast apps and players
fetch them from anywhere, so they answer with ``Access-Control-Allow-Origin: *`` (and a
preflight), ``Cross-Origin-Resource-Policy: cross-origin`` and a policy under which nothing
runs (:class:`~podscribe.api.headers.SharedResourceResponse`), the podcast namespace's content
types, and a long public cache with an ``ETag`` (``PODSCRIBE_SHARE_LINK_MAX_AGE_SECONDS``).
Each is rendered with the owner's speaker names and speakers flag, as the owner's own
``GET .../transcript`` would be.

Revoking deletes the row: from the next request on, every URL of the link is ``404`` here.
Copies a cache already holds live until their ``max-age``; a CDN in front must be purged on
revoke.

A feed's link is read by every player of every listener, so what was rendered is kept in a
small in-process cache (at most :data:`RENDERED_CACHE_BYTES`, least recently used out), keyed
by everything that shapes it (the job and when it succeeded, the format, the owner's names and
flag). It is consulted only after the token was found live, so a revoke still counts at once.

Every refusal of ``/t/`` is the same ``404 not_found`` with the same body, whether the token
is malformed, unknown, revoked, its job gone or no longer succeeded, or the extension unknown:
an answer never tells a guesser anything. The route is limited per client address on a
budget of its own (``PODSCRIBE_RATE_LIMIT_SHARE_LINKS_PER_IP``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from cachetools import LRUCache
from sqlalchemy.engine import Engine
from werkzeug.wrappers import Request, Response

from podscribe.api.admission import RequestContext
from podscribe.api.documents import SHARE_FORMATS, job_path, share_link_model
from podscribe.api.headers import SharedResourceResponse
from podscribe.api.models import ShareLinkList
from podscribe.api.problems import problem_response
from podscribe.api.responses import json_response
from podscribe.api.transcripts import caller_options, media_type, transcript_bytes
from podscribe.db import transaction
from podscribe.errors import RouteNotFoundError, TranscriptGoneError
from podscribe.jobs import Job, get_job
from podscribe.jobs.share_links import (
    create_share_link,
    list_share_links,
    revoke_share_link,
    shared_job,
)
from podscribe.settings import Settings
from podscribe.storage import TranscriptStore

__all__ = [
    "RENDERED_CACHE_BYTES",
    "SHARE_PREFIX",
    "create_link_response",
    "list_links_response",
    "revoke_link_response",
    "shared_preflight_response",
    "shared_transcript_response",
]

log = logging.getLogger("podscribe.api")

SHARE_PREFIX = "/t/"
"""Where share links live (outside ``/v1``: their URLs are pasted into feeds)."""
RENDERED_CACHE_BYTES = 32 * 1024 * 1024
"""Bytes of rendered share-link answers kept per process."""
_rendered: LRUCache[tuple[Any, ...], bytes] = LRUCache(RENDERED_CACHE_BYTES, getsizeof=len)
_rendered_lock = threading.Lock()
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length",
}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match",
    "Access-Control-Max-Age": "86400",
}


def create_link_response(context: RequestContext, settings: Settings, engine: Engine) -> Response:
    """``POST .../links``: a new link of the caller's succeeded job (201)."""
    with transaction(engine) as conn:
        link = create_share_link(
            conn, context.job, context.key.fingerprint, max_live=settings.share_links_per_job
        )
        job = get_job(conn, context.job, key_fingerprint=context.key.fingerprint)
    log.info("share link made", extra={"job_id": job.id, "caller": context.key.short})
    document = share_link_model(link, context.links_base, job.language).render()
    response = json_response(document, status=201)
    response.headers["Location"] = f"{context.links_base}{job_path(job.id)}/links/{link.id}"
    return response


def list_links_response(context: RequestContext, engine: Engine) -> Response:
    """``GET .../links``: the caller's live links of the job, oldest first."""
    with transaction(engine) as conn:
        job = get_job(conn, context.job, key_fingerprint=context.key.fingerprint)
        links = list_share_links(conn, job.id, context.key.fingerprint)
    items = [share_link_model(link, context.links_base, job.language) for link in links]
    return json_response(ShareLinkList(items=items).render())


def revoke_link_response(context: RequestContext, engine: Engine) -> Response:
    """``DELETE .../links/{link_id}``: the link's URLs 404 from now on (204)."""
    link_id = context.request.path.rstrip("/").rsplit("/", 1)[-1]
    with transaction(engine) as conn:
        job = get_job(conn, context.job, key_fingerprint=context.key.fingerprint)
        revoke_share_link(conn, job.id, context.key.fingerprint, link_id)
    log.info("share link revoked", extra={"job_id": job.id, "caller": context.key.short})
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


def shared_transcript_response(
    request: Request, settings: Settings, engine: Engine, store: TranscriptStore
) -> Response:
    """``GET /t/<token>.<ext>``: the transcript a link shows, as its owner sees it.

    Returns:
        200 with the transcript, 304 when ``If-None-Match`` names its ``ETag``, or the one
        ``404`` of every refusal (see the module docstring).
    """
    token, _, extension = request.path.removeprefix(SHARE_PREFIX).partition(".")
    if extension not in SHARE_FORMATS:
        return _not_found()
    with transaction(engine) as conn:
        job = shared_job(conn, token)
    if job is None:
        return _not_found()
    fmt = SHARE_FORMATS[extension][0]
    try:
        body = _rendered_for(job, fmt, engine, store)
    except TranscriptGoneError:
        return _not_found()  # the job is failed as transcript_gone meanwhile
    etag = hashlib.sha256(body).hexdigest()[:32]
    response = SharedResourceResponse(body, status=200, content_type=media_type(fmt))
    response.set_etag(etag)
    response.headers.update(_CORS)
    response.headers["Cache-Control"] = f"public, max-age={settings.share_link_max_age_seconds}"
    response.headers["Content-Disposition"] = f'inline; filename="transcript.{extension}"'
    return response.make_conditional(request)


def _rendered_for(job: Job, fmt: str, engine: Engine, store: TranscriptStore) -> bytes:
    """The owner's view of ``job`` in ``fmt``: from the cache, or rendered and kept."""
    key = (job.id, job.finished_at, fmt, job.speakers, tuple(sorted(job.speaker_names.items())))
    with _rendered_lock:
        cached = _rendered.get(key)
    if cached is not None:
        return cached
    body = transcript_bytes(job, fmt, caller_options(job), engine, store)
    if len(body) <= RENDERED_CACHE_BYTES // 4:  # one huge transcript never empties the cache
        with _rendered_lock:
            _rendered[key] = body
    return body


def shared_preflight_response() -> Response:
    """``OPTIONS /t/...``: the CORS preflight (any origin may ``GET`` a link)."""
    response = SharedResourceResponse(status=204)
    response.headers.update(_PREFLIGHT)
    return response


def _not_found() -> Response:
    response = problem_response(RouteNotFoundError("no resource at this path"))
    response.headers.update(_CORS)
    return response
