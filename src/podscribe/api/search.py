"""``GET /v1/search``: the query language, the query's parameters, and its cursor.

The language (docs/api.md, ``GET /v1/search``): words are ANDed; ``"quoted words"`` are a
phrase (the words adjacent, in order); a trailing ``*`` makes a word a prefix
(``transcri*``). Nothing else is an operator: ``&``, ``|``, ``!``, ``:``, ``(``, ``-`` and
the like are punctuation, read as word separators, so no input can reach ``to_tsquery``'s
own syntax (:mod:`podscribe.jobs.search` builds the query from words, phrases and
letter-and-digit prefixes only). An unclosed quote runs to the end of the query.

A cursor is packed as ``GET /v1/transcriptions``'s are (:mod:`podscribe.api.listing`): it
holds the position a page ended at and a digest of the ``q`` it was made for, so a
cursor used with another query is refused (``400 invalid_request``) instead of paging a
different list from a position in this one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Engine
from werkzeug.datastructures import MultiDict

from podscribe.api.listing import (
    not_a_cursor,
    only_parameters,
    pack_cursor,
    parse_limit,
    unpack_cursor,
)
from podscribe.api.models import SearchResult, SearchResults
from podscribe.db import transaction
from podscribe.errors import InvalidRequestError
from podscribe.jobs.search import SearchPosition, Term, TermKind, search

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_QUERY_LENGTH",
    "SearchQuery",
    "decode_search_cursor",
    "encode_search_cursor",
    "parse_search_query",
    "parse_search_text",
    "search_document",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_QUERY_LENGTH = 200
_PARAMETERS = ("q", "limit", "cursor")
_RUN = re.compile(r"[^\W_]+")
"""A run of letters and digits: what a prefix may hold."""
_SEPARATORS = frozenset("\t\n\r\x0b\x0c")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})
"""Control characters (NUL cannot even be stored) and lone surrogates (not UTF-8)."""


@dataclass(frozen=True)
class SearchQuery:
    """The query of ``GET /v1/search``.

    Attributes:
        text: ``q`` as sent.
        terms: what it means (every term must match).
        limit: hits per page, 1 to :data:`MAX_LIMIT`.
        after: where the page starts (from ``cursor``), or None for the first page.
    """

    text: str
    terms: tuple[Term, ...]
    limit: int = DEFAULT_LIMIT
    after: SearchPosition | None = None


def parse_search_text(text: str) -> tuple[Term, ...]:
    """What ``q`` asks for: its words, phrases and prefixes.

    Args:
        text: the query as typed, 1 to :data:`MAX_QUERY_LENGTH` characters.

    Returns:
        At least one term.

    Raises:
        InvalidRequestError: too short or long, a control character, or not one word
            (letters or digits) in it.
    """
    if not 1 <= len(text) <= MAX_QUERY_LENGTH:
        raise InvalidRequestError(f"q must be 1 to {MAX_QUERY_LENGTH} characters, not {len(text)}")
    if any(
        unicodedata.category(ch) in _REFUSED_CATEGORIES and ch not in _SEPARATORS for ch in text
    ):
        raise InvalidRequestError("q may not hold control characters")
    terms: list[Term] = []
    # Between quotes (odd pieces) a phrase; outside them words and prefixes.
    for index, piece in enumerate(text.split('"')):
        if index % 2:
            words = _RUN.findall(piece)
            if len(words) > 1:
                terms.append(Term(TermKind.PHRASE, piece.strip()))
            elif words:
                terms.append(Term(TermKind.WORD, piece.strip()))
            continue
        for token in piece.split():
            terms += _token_terms(token)
    if not terms:
        raise InvalidRequestError("q holds no word to search for (letters or digits)")
    return tuple(terms)


def _token_terms(token: str) -> list[Term]:
    """A word as typed, or, with a trailing ``*``, its letter-and-digit runs: the last one
    a prefix, the ones before it words (``e-mai*``: ``e`` and ``mai*``)."""
    if not token.endswith("*"):
        return [Term(TermKind.WORD, token)] if _RUN.search(token) else []
    runs = _RUN.findall(token.rstrip("*"))
    if not runs:
        return []
    return [*(Term(TermKind.WORD, run) for run in runs[:-1]), Term(TermKind.PREFIX, runs[-1])]


def encode_search_cursor(position: SearchPosition, text: str) -> str:
    """The cursor of the page after ``position`` of the search for ``text``.

    Args:
        position: where the previous page ended.
        text: the ``q`` of the search.

    Returns:
        URL-safe base64 without padding.
    """
    return pack_cursor(
        {"r": position.rank, "id": str(position.job_id), "n": position.seq, "q": _digest(text)}
    )


def decode_search_cursor(cursor: str, text: str) -> SearchPosition:
    """The position a cursor names, if it was made for the same ``q``.

    Args:
        cursor: what the caller sent as ``cursor``.
        text: the ``q`` of this request.

    Returns:
        The position the page starts after.

    Raises:
        InvalidRequestError: not a search cursor of this API, or made for another query.
    """
    document = unpack_cursor(cursor)
    if "q" not in document:
        raise not_a_cursor()
    if document["q"] != _digest(text):
        raise InvalidRequestError(
            "this cursor was made for another q; use it with the same q or start afresh"
        )
    rank, job_id, seq = document.get("r"), document.get("id"), document.get("n")
    if not _finite_number(rank) or type(seq) is not int or not 0 <= seq < 2**31:
        raise not_a_cursor()
    try:
        parsed = uuid.UUID(str(job_id))
    except ValueError:
        raise not_a_cursor() from None
    return SearchPosition(rank=float(cast(float, rank)), job_id=parsed, seq=seq)


def parse_search_query(args: MultiDict[str, str]) -> SearchQuery:
    """Validate ``?q=...&limit=...&cursor=...``.

    Args:
        args: the request's query arguments.

    Returns:
        The query.

    Raises:
        InvalidRequestError: ``q`` missing or not a query (:func:`parse_search_text`), an
            unknown or repeated parameter, a limit out of 1 to :data:`MAX_LIMIT`, or a cursor
            that is not one of ours or was made for another ``q``.
    """
    only_parameters(args, _PARAMETERS)
    text = args.get("q")
    if text is None:
        raise InvalidRequestError("q is required: the words to search for")
    terms = parse_search_text(text)
    limit = parse_limit(args.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    cursor = args.get("cursor")
    after = decode_search_cursor(cursor, text) if cursor is not None else None
    return SearchQuery(text=text, terms=terms, limit=limit, after=after)


def search_document(
    engine: Engine, args: MultiDict[str, str], key_fingerprint: str
) -> dict[str, Any]:
    """Answer ``GET /v1/search`` for a key: a page of hits as a ``SearchResults`` document.

    Args:
        engine: the database.
        args: the request's query arguments.
        key_fingerprint: the caller.

    Returns:
        The rendered document.

    Raises:
        InvalidRequestError: a bad query (:func:`parse_search_query`).
    """
    query = parse_search_query(args)
    with transaction(engine) as conn:
        page = search(
            conn,
            key_fingerprint=key_fingerprint,
            query=query.terms,
            limit=query.limit,
            after=query.after,
        )
    document = SearchResults(
        items=[
            SearchResult(
                id=hit.job_id,
                title=hit.title,
                show=hit.show,
                start=hit.start,
                end=hit.end,
                snippet=hit.snippet,
            )
            for hit in page.hits
        ],
        next_cursor=(
            encode_search_cursor(page.next_position, query.text) if page.next_position else None
        ),
    )
    return document.render()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _finite_number(value: object) -> bool:
    return type(value) in (int, float) and abs(float(value)) < float("inf")  # type: ignore[arg-type]
