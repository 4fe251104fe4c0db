"""The search query language: what ``q`` means, and that no ``q`` can break the SQL.

:func:`~podscribe.api.search.parse_search_text` turns any text into terms or refuses it
with ``invalid_request`` (a clean 400); the tsquery built from any terms it returns is valid
PostgreSQL, checked against the real server (a fresh migrated database, the whole search
statement run). Bounded (``max_examples``) and derandomized under ``CI=true`` like every
hypothesis test here.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from podscribe.api.search import (
    MAX_QUERY_LENGTH,
    decode_search_cursor,
    encode_search_cursor,
    parse_search_text,
)
from podscribe.errors import InvalidRequestError
from podscribe.jobs.search import SearchPosition, Term, TermKind, search, tsquery

W, P, X = TermKind.WORD, TermKind.PHRASE, TermKind.PREFIX

# Text a caller might type, weighted to the characters that mean something somewhere:
# tsquery's operators and quoting, our quotes and stars, whitespace, letters of any script.
_SYNTAX = st.sampled_from([*"\"'*&|!:()<->\\%_-.,;@#$ \t\n", "<->", ":*", "''", '""'])
_LETTERS = st.characters(codec="utf-8")  # UTF-8: no lone surrogates, as a URL cannot hold
_TYPED = st.lists(st.one_of(_SYNTAX, _LETTERS, st.sampled_from(["river", "a", "the", "東京"])))
QUERIES = st.one_of(_TYPED.map("".join), st.text(max_size=MAX_QUERY_LENGTH + 20))


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("river", [(W, "river")]),
        ("river  bank", [(W, "river"), (W, "bank")]),
        ('"fellow americans" ask', [(P, "fellow americans"), (W, "ask")]),
        ('"fellow americans', [(P, "fellow americans")]),
        ('"single"', [(W, "single")]),
        ("transcri*", [(X, "transcri")]),
        ("transcri***", [(X, "transcri")]),
        ("e-mai*", [(W, "e"), (X, "mai")]),
        ("naï*", [(X, "naï")]),
        ("a&b", [(W, "a&b")]),
        ("!river", [(W, "!river")]),
        ("' river *", [(W, "river")]),
        ('"" river', [(W, "river")]),
        ("river\tbank\nsea", [(W, "river"), (W, "bank"), (W, "sea")]),
    ],
)
def test_the_language(text: str, terms: list[tuple[TermKind, str]]) -> None:
    assert [(term.kind, term.text) for term in parse_search_text(text)] == terms


@pytest.mark.parametrize(
    "text", ["", " ", "*", "'", "&|!:*()", '""', "x" * 201, "y" * 10_000, "a\x00b", "\x07", "_"]
)
def test_what_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_search_text(text)


@given(QUERIES)
@settings(max_examples=500, deadline=None)
def test_any_text_gives_terms_or_a_clean_refusal(text: str) -> None:
    try:
        terms = parse_search_text(text)
    except InvalidRequestError as error:
        refused: InvalidRequestError | None = error
    else:
        refused = None
    if refused is not None:
        assert (refused.http_status, refused.code) == (400, "invalid_request")
        return
    assert terms and 1 <= len(text) <= MAX_QUERY_LENGTH
    for term in terms:
        assert "\x00" not in term.text
        if term.kind is TermKind.PREFIX:
            assert term.text.isalnum()


@given(QUERIES)
@settings(
    max_examples=300,
    deadline=None,
    # One read-only database for every example: nothing is written.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_any_accepted_text_is_a_valid_tsquery_and_search(engine: Engine, text: str) -> None:
    try:
        terms = parse_search_text(text)
    except InvalidRequestError:
        return
    with engine.connect() as conn:
        conn.execute(sa.select(tsquery(terms))).scalar_one()
        after = SearchPosition(rank=0.5, job_id=uuid.uuid4(), seq=3)
        page = search(conn, key_fingerprint="k", query=terms, limit=5, after=after)
    assert page.hits == [] and page.next_position is None


def test_a_prefix_term_must_be_letters_and_digits() -> None:
    for text in ("a'b", "a:*", "a b", "", "a\\"):
        with pytest.raises(ValueError, match=r"prefix|text"):
            Term(TermKind.PREFIX, text)
    with pytest.raises(ValueError, match="NUL"):
        Term(TermKind.WORD, "nul\x00")


def test_a_cursor_round_trips_and_is_bound_to_its_query() -> None:
    position = SearchPosition(rank=0.1, job_id=uuid.uuid4(), seq=7)
    cursor = encode_search_cursor(position, "river bank")
    assert decode_search_cursor(cursor, "river bank") == position
    with pytest.raises(InvalidRequestError, match="another q"):
        decode_search_cursor(cursor, "river")


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
@settings(max_examples=200, deadline=None)
def test_any_cursor_text_is_a_position_or_a_clean_refusal(cursor: str) -> None:
    try:
        decode_search_cursor(cursor, "river")
    except InvalidRequestError:
        return  # refused cleanly; anything else raised fails the test
