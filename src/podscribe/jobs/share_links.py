"""Share links: unguessable, revocable public URLs of one key's view of a transcript.

A link belongs to a key with access to a succeeded job; its token (``secrets.token_urlsafe``
of 32 bytes: 256 bits) serves every format at ``/t/<token>.<ext>``, rendered with the owner's
speaker names (:mod:`podscribe.api.share_links`). Revoking deletes the row, so the token is
unknown from the next request on; the owner's access going (its ``DELETE``, or the job's row
with its last key) cascades to its links (migration ``0009``).

The token is stored as well as its SHA-256, by choice: the owner's job document shows its
links again (the ready-to-paste ``<podcast:transcript>`` lines), and a link exists to be
published in a feed, so it protects nothing a reader of the database could not read anyway
(``transcript_segments`` holds the text). Look-ups go by the hash (a unique index), so no
comparison ever runs over the secret itself, and a token that is not of the form a token has
is refused before any query.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import (
    JobNotFoundError,
    ShareLinkNotFoundError,
    TooManyShareLinksError,
    TranscriptNotReadyError,
)
from podscribe.jobs.model import Job, JobId, JobStatus, parse_job_id
from podscribe.jobs.submissions import seen_by_key
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.tables import share_links_table as _links

__all__ = [
    "TOKEN_BYTES",
    "ShareLink",
    "create_share_link",
    "list_share_links",
    "revoke_share_link",
    "shared_job",
]

TOKEN_BYTES = 32
"""Random bytes per token (43 URL-safe characters)."""
_TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class ShareLink:
    """One live share link.

    Attributes:
        id: the link's id (what revoking names).
        job_id: the job it shows.
        token: the secret part of its URLs.
        created_at: when it was made.
    """

    id: str
    job_id: str
    token: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ShareLink:
        """The link a ``share_links`` row describes."""
        return cls(str(row["id"]), str(row["job_id"]), row["token"], row["created_at"])


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def create_share_link(
    conn: Connection, job_id: JobId, key_fingerprint: str, *, max_live: int
) -> ShareLink:
    """Make a share link of a succeeded job for a key.

    The key's access row is locked first, so parallel requests cannot pass ``max_live``.

    Args:
        conn: the connection; the caller's transaction commits the link.
        job_id: the job.
        key_fingerprint: the owner.
        max_live: the most live links the key may have for the job.

    Returns:
        The new link.

    Raises:
        JobNotFoundError: no such job, or not visible to the key.
        TranscriptNotReadyError: the job has not succeeded.
        TooManyShareLinksError: the key has ``max_live`` links for the job already.
    """
    row_id = parse_job_id(job_id)
    status = conn.execute(
        sa.select(_jobs.c.status)
        .select_from(_jobs.join(_access, _access.c.job_id == _jobs.c.id))
        .where(_jobs.c.id == row_id, _access.c.key_fingerprint == key_fingerprint)
        .with_for_update(of=_access)
    ).scalar()
    if status is None:
        raise JobNotFoundError(f"no job {job_id}")
    if status != JobStatus.SUCCEEDED:
        raise TranscriptNotReadyError(
            f"job {job_id} is {status}; a transcript can be shared once the job has succeeded"
        )
    live = conn.execute(
        sa.select(sa.func.count())
        .select_from(_links)
        .where(_links.c.job_id == row_id, _links.c.key_fingerprint == key_fingerprint)
    ).scalar_one()
    if live >= max_live:
        raise TooManyShareLinksError(
            f"this key has {live} live share links for job {job_id}, the most allowed; "
            "revoke one first"
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = conn.execute(
        sa.insert(_links)
        .values(
            id=uuid.uuid4(),
            job_id=row_id,
            key_fingerprint=key_fingerprint,
            token=token,
            token_sha256=_digest(token),
            created_at=sa.func.now(),
        )
        .returning(*_links.c)
    )
    return ShareLink.from_row(row.mappings().one())


def list_share_links(conn: Connection, job_id: JobId, key_fingerprint: str) -> list[ShareLink]:
    """A key's live links of a job, oldest first (none when it has no access)."""
    query = (
        sa.select(_links)
        .where(_links.c.job_id == parse_job_id(job_id), _links.c.key_fingerprint == key_fingerprint)
        .order_by(_links.c.created_at, _links.c.id)
    )
    return [ShareLink.from_row(row) for row in conn.execute(query).mappings()]


def revoke_share_link(conn: Connection, job_id: JobId, key_fingerprint: str, link_id: str) -> None:
    """Delete one of a key's links of a job: its URLs are unknown from now on.

    Raises:
        ShareLinkNotFoundError: the key has no live link of that id for the job (a
            malformed id included).
    """
    try:
        link = uuid.UUID(link_id)
    except ValueError:
        raise ShareLinkNotFoundError(f"no share link {link_id!r:.60}") from None
    deleted = conn.execute(
        sa.delete(_links)
        .where(
            _links.c.id == link,
            _links.c.job_id == parse_job_id(job_id),
            _links.c.key_fingerprint == key_fingerprint,
        )
        .returning(_links.c.id)
    ).first()
    if deleted is None:
        raise ShareLinkNotFoundError(f"no share link {link_id!r:.60} of job {job_id}")


def shared_job(conn: Connection, token: str) -> Job | None:
    """The succeeded job a token shows, as its owner sees it (names, speakers flag).

    Args:
        conn: the connection.
        token: the token from the URL, as sent.

    Returns:
        The job, or None for a malformed, unknown or revoked token, or a job that is no
        longer succeeded: the caller answers all of them alike.
    """
    if not _TOKEN_FORM.fullmatch(token):
        return None
    query = (
        sa.select(
            _jobs,
            _access.c.source_url.label("access_source_url"),
            _access.c.speakers.label("access_speakers"),
            _access.c.speaker_names.label("access_speaker_names"),
        )
        .select_from(
            _links.join(_jobs, _jobs.c.id == _links.c.job_id).join(
                _access,
                sa.and_(
                    _access.c.job_id == _links.c.job_id,
                    _access.c.key_fingerprint == _links.c.key_fingerprint,
                ),
            )
        )
        .where(_links.c.token_sha256 == _digest(token), _jobs.c.status == JobStatus.SUCCEEDED)
    )
    row = conn.execute(query).mappings().first()
    return seen_by_key(Job.from_row(row), row) if row is not None else None
