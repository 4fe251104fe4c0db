"""Full-text search over the transcripts of a key's succeeded jobs.

Each segment of a succeeded job is a row of ``transcript_segments`` (migration ``0007``) with
an English ``tsvector`` behind a GIN index. :func:`index_transcript` writes a job's rows in
the transaction that marks it succeeded (the worker calls it beside
:func:`~podscribe.jobs.transitions.succeed`), so a succeeded job is always searchable; a
deleted job's rows cascade away with it.

A query is a list of :class:`Term` (parsed from what a caller typed by
:mod:`podscribe.api.search`), ANDed. No caller text reaches ``to_tsquery``'s operator syntax:
words go through ``plainto_tsquery``, phrases through ``phraseto_tsquery`` (both read any
text as words), and a prefix, whose text is letters and digits only, is quoted as one
lexeme. A prefix is matched both stemmed and as typed (``country*`` finds "countries" through
the stem ``countri`` and "countryside" through ``country``), so stemming never hides a word
that plainly starts with what was typed.

Hits are ranked by ``ts_rank_cd`` (cover density: more and closer matches rank first), then
job id and segment number, which makes the order total: a page starts strictly after the
last hit of the one before (:class:`SearchPosition`), so a walk has no gaps or repeats.
Snippets are ``ts_headline`` over the HTML-escaped text, so the only markup in one is the
``<mark>`` pairs the headline adds.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from podscribe.jobs.model import JobId, JobStatus, parse_job_id
from podscribe.jobs.speaker_names import record_speaker_labels
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.tables import transcript_segments_table as _segments
from podscribe.transcription.segments import Segment

__all__ = [
    "SEARCH_CONFIG",
    "SearchHit",
    "SearchPage",
    "SearchPosition",
    "Term",
    "TermKind",
    "index_transcript",
    "search",
]

SEARCH_CONFIG = "english"
"""The text search configuration of the index (migration ``0007``'s generated column)."""

_PREFIX_FORM = re.compile(r"[^\W_]+")
"""What a prefix may be: letters and digits, nothing ``to_tsquery`` could read as syntax."""
_HEADLINE_OPTIONS = "StartSel=<mark>, StopSel=</mark>, MaxWords=60, MinWords=30, ShortWord=2"
"""30 to 60 words around the matches: most or all of a segment."""
_MAX_TEXT = 100_000
"""Characters of a segment indexed (Whisper's are a few hundred): PostgreSQL refuses a
tsvector over 1 MB, and that error would undo the job's success with it."""
_INSERT_CHUNK = 1000
"""Rows per INSERT (5 parameters each, far below the protocol's 32,767)."""
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))
"""``html.escape``'s replacements, ``&`` first."""


class TermKind(enum.StrEnum):
    """How a :class:`Term` matches."""

    WORD = "word"
    PHRASE = "phrase"
    PREFIX = "prefix"


@dataclass(frozen=True)
class Term:
    """One part of a query; a segment must match every term.

    Attributes:
        kind: a word (stemmed), a phrase (its words in order, adjacent), or a prefix.
        text: the word or phrase as typed; a prefix's letters and digits.

    Raises:
        ValueError: an empty text, a NUL (PostgreSQL text cannot hold one), or a prefix that
            is not letters and digits only.
    """

    kind: TermKind
    text: str

    def __post_init__(self) -> None:
        if not self.text.strip() or "\x00" in self.text:
            raise ValueError(f"a {self.kind.value} needs text without NUL: {self.text!r:.40}")
        if self.kind is TermKind.PREFIX and not _PREFIX_FORM.fullmatch(self.text):
            raise ValueError(f"a prefix is letters and digits only: {self.text!r:.40}")


@dataclass(frozen=True)
class SearchPosition:
    """Where a page of :func:`search` ended: its last hit's rank, job and segment."""

    rank: float
    job_id: uuid.UUID
    seq: int


@dataclass(frozen=True)
class SearchHit:
    """One matching segment.

    Attributes:
        job_id: the job.
        seq: the segment's number in the transcript (from 0).
        start: seconds from the start of the episode.
        end: seconds from the start of the episode.
        title: the episode's title (the key's own link when the job has no episode).
        show: the show's name ("" when unknown).
        snippet: HTML-escaped text with the matches in ``<mark>...</mark>``.
        rank: ``ts_rank_cd`` of the segment for the query.
    """

    job_id: uuid.UUID
    seq: int
    start: float
    end: float
    title: str
    show: str
    snippet: str
    rank: float


@dataclass(frozen=True)
class SearchPage:
    """One page of hits, best first, and where the next page starts (None: no more)."""

    hits: list[SearchHit]
    next_position: SearchPosition | None


def index_transcript(conn: Connection, job_id: JobId, segments: Sequence[Segment]) -> int:
    """Make a job's transcript searchable, replacing whatever was indexed for it before;
    its speaker labels are recorded on the job too
    (:func:`~podscribe.jobs.speaker_names.record_speaker_labels`).

    Args:
        conn: the connection; call it in the transaction that marks the job succeeded.
        job_id: the job.
        segments: the transcript's segments, in order.

    Returns:
        How many segments were indexed (empty ones are skipped, their numbers kept).
    """
    row_id = parse_job_id(job_id)
    conn.execute(sa.delete(_segments).where(_segments.c.job_id == row_id))
    rows = [
        {
            "job_id": row_id,
            "seq": seq,
            "start_seconds": float(segment.start),
            "end_seconds": float(segment.end),
            # PostgreSQL text cannot hold NUL; no word is lost with it.
            "text": text[:_MAX_TEXT],
        }
        for seq, segment in enumerate(segments)
        if (text := segment.text.replace("\x00", "").strip())
    ]
    for first in range(0, len(rows), _INSERT_CHUNK):
        conn.execute(sa.insert(_segments).values(rows[first : first + _INSERT_CHUNK]))
    record_speaker_labels(conn, row_id, segments)
    return len(rows)


def tsquery(terms: Sequence[Term]) -> ColumnElement[str]:
    """The ``tsquery`` every term of ``terms`` must match (their ``&&``).

    Args:
        terms: at least one term.

    Returns:
        A SQL expression with the terms' texts as bound parameters.

    Raises:
        ValueError: no terms.
    """
    if not terms:
        raise ValueError("a query needs at least one term")
    combined = _term_query(terms[0])
    for term in terms[1:]:
        combined = sa.func.tsquery_and(combined, _term_query(term), type_=pg.TSQUERY)
    return combined


def _term_query(term: Term) -> ColumnElement[str]:
    if term.kind is TermKind.WORD:
        return sa.func.plainto_tsquery(SEARCH_CONFIG, sa.literal(term.text, sa.Text))
    if term.kind is TermKind.PHRASE:
        return sa.func.phraseto_tsquery(SEARCH_CONFIG, sa.literal(term.text, sa.Text))
    # Letters and digits only (Term checks it), so the quotes hold one lexeme.
    lexeme = sa.literal(f"'{term.text}':*", sa.Text)
    return sa.func.tsquery_or(
        sa.func.to_tsquery(SEARCH_CONFIG, lexeme),
        sa.func.to_tsquery("simple", lexeme),
        type_=pg.TSQUERY,
    )


def search(
    conn: Connection,
    *,
    key_fingerprint: str,
    query: Sequence[Term],
    limit: int,
    after: SearchPosition | None = None,
) -> SearchPage:
    """One page of the segments matching ``query`` in the key's succeeded jobs, best first.

    Args:
        conn: the connection (one statement; no lock is taken).
        key_fingerprint: whose jobs (``job_access``).
        query: the terms, all of which a segment must match.
        limit: at most this many hits (at least 1).
        after: the previous page's :attr:`SearchPage.next_position`, or None.

    Returns:
        The page and where the next one starts.

    Raises:
        ValueError: ``limit`` below 1, or no terms.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    match = tsquery(query)
    rank = sa.func.ts_rank_cd(_segments.c.search_vector, match, type_=sa.REAL).label("rank")
    matches = (
        sa.select(
            _segments.c.job_id,
            _segments.c.seq,
            _segments.c.start_seconds,
            _segments.c.end_seconds,
            _segments.c.text,
            rank,
        )
        .select_from(
            _segments.join(_jobs, _jobs.c.id == _segments.c.job_id).join(
                _access, _access.c.job_id == _segments.c.job_id
            )
        )
        .where(
            _access.c.key_fingerprint == key_fingerprint,
            _jobs.c.status == JobStatus.SUCCEEDED.value,
            _segments.c.search_vector.op("@@")(match),
        )
        .subquery("matches")
    )
    order = (matches.c.rank.desc(), matches.c.job_id, matches.c.seq)
    # One row more than asked for says whether another page follows.
    page_query = sa.select(matches).order_by(*order).limit(limit + 1)
    if after is not None:
        # (-rank, job, seq) ascending is the page order. The rank is compared as the real
        # it was computed as: a float8 of its decimal form may differ in the last bits.
        page_query = page_query.where(
            sa.tuple_(-matches.c.rank, matches.c.job_id, matches.c.seq)
            > sa.tuple_(
                -sa.cast(sa.literal(after.rank), sa.REAL),
                sa.literal(after.job_id, type_=_segments.c.job_id.type),
                sa.literal(after.seq, type_=sa.Integer),
            )
        )
    page = page_query.subquery("page")
    # The headline re-parses the text: only for the rows of this page.
    snippet = sa.func.ts_headline(
        SEARCH_CONFIG, _escaped(page.c.text), match, sa.literal(_HEADLINE_OPTIONS, sa.Text)
    ).label("snippet")
    statement = (
        sa.select(
            page.c.job_id,
            page.c.seq,
            page.c.start_seconds,
            page.c.end_seconds,
            page.c.rank,
            snippet,
            _jobs.c.episode["title"].astext.label("title"),
            _jobs.c.episode["show"].astext.label("show"),
            _access.c.source_url,
        )
        .select_from(
            page.join(_jobs, _jobs.c.id == page.c.job_id).join(
                _access,
                sa.and_(
                    _access.c.job_id == page.c.job_id,
                    _access.c.key_fingerprint == key_fingerprint,
                ),
            )
        )
        .order_by(page.c.rank.desc(), page.c.job_id, page.c.seq)
    )
    rows = list(conn.execute(statement).mappings())
    shown, more = rows[:limit], len(rows) > limit
    hits = [
        SearchHit(
            job_id=row["job_id"],
            seq=row["seq"],
            start=row["start_seconds"],
            end=row["end_seconds"],
            title=row["title"] or row["source_url"],
            show=row["show"] or "",
            snippet=row["snippet"],
            rank=row["rank"],
        )
        for row in shown
    ]
    last = hits[-1] if more and hits else None
    next_position = SearchPosition(last.rank, last.job_id, last.seq) if last else None
    return SearchPage(hits, next_position)


def _escaped(text: ColumnElement[str]) -> ColumnElement[str]:
    """``text`` HTML-escaped in SQL, so the headline's ``<mark>`` is its only markup."""
    for character, entity in _ESCAPES:
        text = sa.func.replace(text, character, entity, type_=sa.Text)
    return text
