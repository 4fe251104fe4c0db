"""``GET /v1/search`` through the real submit entry point, over real PostgreSQL full-text search.

Jobs are submitted through the API, then made succeeded by the job operations with their
segments indexed in that same transaction (as the worker does); one real job runs through
``run_job`` in ``test_search_indexing.py`` (with the CLI). Two keys each search only their
own jobs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs.search import index_transcript
from podscribe.transcription.segments import Segment
from tests.integration.submit_support import API_KEY, OTHER_KEY, episode_url, submit_test_client

COLLECTION = 1535809341
JFK = "And so, my fellow Americans: ask not what your country can do for you"


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(client: Any, episode: int, key: str = API_KEY) -> str:
    response = client.post(
        "/v1/transcriptions", json={"url": episode_url(COLLECTION, episode)}, headers=auth(key)
    )
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    return str(response.get_json()["id"])


def succeed_with(
    engine: Engine, job_id: str, texts: Sequence[str], *, title: str = "An episode"
) -> None:
    """Run the job to succeeded with these segments (10 s each), indexed in that transaction."""
    segments = [
        Segment(start=10.0 * number, end=10.0 * number + 9.5, text=text)
        for number, text in enumerate(texts)
    ]
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job_id, lease_seconds=60)
        jobs.update_job_fields(conn, job_id, {"episode": {"title": title, "show": "The Show"}})
        # Search reads the index, never the stored files: a name stands in for them.
        jobs.succeed(conn, job_id, transcript_objects={"json": f"transcripts/{job_id}.json"})
        index_transcript(conn, job_id, segments)


def transcribed(client: Any, engine: Engine, episode: int, *texts: str, key: str = API_KEY) -> str:
    job_id = submit(client, episode, key)
    succeed_with(engine, job_id, texts, title=f"Episode {episode}")
    return job_id


def search(client: Any, key: str = API_KEY, **query: str) -> dict[str, Any]:
    response = client.get("/v1/search", query_string=query, headers=auth(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.get_json())


def hits(client: Any, q: str, key: str = API_KEY, **query: str) -> list[tuple[str, float]]:
    """(job id, segment start) of each hit of the first page."""
    return [(item["id"], item["start"]) for item in search(client, key, q=q, **query)["items"]]


def walk(client: Any, q: str, limit: str) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    cursor: str | None = None
    while True:
        body = search(client, q=q, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert len(body["items"]) <= int(limit)
        seen += [(item["id"], item["start"]) for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["code"] == code and body["status"] == status and body["detail"]
    return dict(body)


def test_a_hit_is_the_contract_shape_with_a_marked_snippet(client: Any, engine: Engine) -> None:
    job_id = transcribed(client, engine, 1000, "Good evening.", JFK, "Thank you.")
    body = search(client, q="country")
    assert body["next_cursor"] is None
    [item] = body["items"]
    assert set(item) == {"id", "title", "show", "start", "end", "snippet"}
    assert item["id"] == job_id
    assert (item["title"], item["show"]) == ("Episode 1000", "The Show")
    assert (item["start"], item["end"]) == (10.0, 19.5)
    assert "<mark>country</mark>" in item["snippet"]
    assert "fellow Americans" in item["snippet"]


def test_a_phrase_matches_its_words_in_order_and_adjacent(client: Any, engine: Engine) -> None:
    spoken = transcribed(client, engine, 1000, JFK)
    shuffled = transcribed(client, engine, 1001, "your country: what can you do? Ask, not now.")
    assert {job for job, _ in hits(client, "ask country")} == {spoken, shuffled}
    assert hits(client, '"ask not what your country"') == [(spoken, 0.0)]
    assert hits(client, '"fellow americans" ask') == [(spoken, 0.0)]
    assert hits(client, '"americans fellow"') == []
    snippet = search(client, q='"fellow Americans"')["items"][0]["snippet"]
    assert "<mark>fellow</mark> <mark>Americans</mark>" in snippet


def test_words_are_stemmed_and_all_of_them_must_match(client: Any, engine: Engine) -> None:
    job_id = transcribed(
        client, engine, 1000, "We transcribed every episode.", "Nothing to see here."
    )
    assert hits(client, "transcribe") == [(job_id, 0.0)]
    assert hits(client, "transcribing episodes") == [(job_id, 0.0)]
    assert hits(client, "transcribe nothing") == []
    assert hits(client, "TRANSCRIBED") == [(job_id, 0.0)]


def test_a_trailing_star_is_a_prefix_stemmed_or_as_typed(client: Any, engine: Engine) -> None:
    job_id = transcribed(
        client,
        engine,
        1000,
        "The transcript is ready.",
        "Transcription takes a while.",
        "Out in the countryside.",
        "Many countries agree.",
        "A transit strike.",
    )
    assert hits(client, "transcri*") == [(job_id, 0.0), (job_id, 10.0)]
    assert hits(client, "country*") == [(job_id, 20.0), (job_id, 30.0)]
    assert hits(client, "countr* agree") == [(job_id, 30.0)]
    assert hits(client, "transcri") == []  # without the star, a whole word
    snippet = search(client, q="country*")["items"][0]["snippet"]
    assert "<mark>countryside</mark>" in snippet


def test_more_and_closer_matches_rank_first(client: Any, engine: Engine) -> None:
    once = transcribed(client, engine, 1000, "Fellow Americans, good evening to you all tonight.")
    twice = transcribed(
        client, engine, 1001, "Fellow Americans, and once more, my fellow Americans."
    )
    apart = transcribed(
        client, engine, 1002, "Fellow travellers came from far away to meet the Americans."
    )
    ranked = [job for job, _ in hits(client, '"fellow americans"')]
    assert ranked == [twice, once]
    ranked = [job for job, _ in hits(client, "fellow americans")]
    assert ranked == [twice, once, apart]


def test_a_key_finds_only_its_own_succeeded_jobs(client: Any, engine: Engine) -> None:
    mine = transcribed(client, engine, 1000, "The secret recipe is cinnamon.")
    assert hits(client, "cinnamon", key=OTHER_KEY) == []
    theirs = transcribed(client, engine, 2000, "Cinnamon rolls for breakfast.", key=OTHER_KEY)
    assert hits(client, "cinnamon") == [(mine, 0.0)]
    assert hits(client, "cinnamon", key=OTHER_KEY) == [(theirs, 0.0)]
    # The other key asks for the same episode: one job, now visible to both.
    assert submit(client, 1000, key=OTHER_KEY) == mine
    assert {job for job, _ in hits(client, "cinnamon", key=OTHER_KEY)} == {mine, theirs}
    # A job not (or no longer) succeeded is not searched, whatever its rows.
    pending = submit(client, 1001)
    with transaction(engine) as conn:
        index_transcript(conn, pending, [Segment(0.0, 1.0, "cinnamon everywhere")])
    assert hits(client, "cinnamon") == [(mine, 0.0)]
    with transaction(engine) as conn:
        jobs.fail(conn, mine, jobs.JobStatus.SUCCEEDED, code="transcript_gone", message="test")
    assert hits(client, "cinnamon") == []


def test_a_deleted_job_is_no_longer_found_and_its_rows_are_gone(
    client: Any, engine: Engine
) -> None:
    job_id = transcribed(client, engine, 1000, "Lighthouses of the northern coast.")
    kept = transcribed(client, engine, 1001, "A lighthouse keeper's diary.")
    assert {job for job, _ in hits(client, "lighthouse")} == {job_id, kept}
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    assert hits(client, "lighthouse") == [(kept, 0.0)]
    with transaction(engine) as conn:
        left = conn.execute(
            sa.text("SELECT count(*) FROM transcript_segments WHERE job_id = :id"), {"id": job_id}
        ).scalar()
    assert left == 0


def test_indexing_again_replaces_a_jobs_rows(client: Any, engine: Engine) -> None:
    job_id = transcribed(client, engine, 1000, "Old words about ravens.", "More ravens.")
    with transaction(engine) as conn:
        assert index_transcript(conn, job_id, [Segment(0.0, 2.0, "New words about owls.")]) == 1
    assert hits(client, "ravens") == []
    assert hits(client, "owls") == [(job_id, 0.0)]


def test_a_huge_or_odd_segment_never_fails_the_success(client: Any, engine: Engine) -> None:
    huge = "lighthouse " + " ".join(f"w{n}" for n in range(60_000)) + " " + "x" * 5000
    job_id = transcribed(client, engine, 1000, huge, "nul\x00 inside", "   ", "keeper")
    assert hits(client, "lighthouse") == [(job_id, 0.0)]
    assert hits(client, "inside") == [(job_id, 10.0)]
    assert hits(client, "keeper") == [(job_id, 30.0)], "an empty segment keeps its number"


def test_paging_with_the_cursor_has_no_gaps_or_repeats(client: Any, engine: Engine) -> None:
    # Equal ranks (identical segments) across jobs: the order is still total.
    texts = ["the river runs", "the river runs", "river and river again", "a river"]
    for number in range(12):
        transcribed(client, engine, 1000 + number, *texts, "no match here")
    transcribed(client, engine, 3000, "river river river", key=OTHER_KEY)
    everything = walk(client, "river", limit="50")
    assert len(everything) == 48 and len(set(everything)) == 48
    for limit in ("1", "7", "20"):
        assert walk(client, "river", limit=limit) == everything
    first = search(client, q="river")
    assert len(first["items"]) == 20 and first["next_cursor"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "y" * 10_000},
        {"q": "*"},
        {"q": "'"},
        {"q": "&|!:*()"},
        {"q": '""'},
        {"q": "nul\x00byte"},
        {"q": "bell\x07"},
        {"q": "river", "limit": "0"},
        {"q": "river", "limit": "51"},
        {"q": "river", "limit": "-1"},
        {"q": "river", "limit": "2.5"},
        {"q": "river", "limit": "abc"},
        {"q": "river", "limit": ""},
        {"q": "river", "cursor": ""},
        {"q": "river", "cursor": "!!!!"},
        {"q": "river", "cursor": "eyJ2IjoxfQ"},
        {"q": "river", "cursor": "A" * 600},
        {"q": "river", "status": "succeeded"},
    ],
)
def test_bad_queries_are_400(client: Any, query: dict[str, str]) -> None:
    response = client.get("/v1/search", query_string=query, headers=auth())
    assert_problem(response, 400, "invalid_request")


def test_repeated_parameters_and_foreign_cursors_are_400(client: Any, engine: Engine) -> None:
    for number in range(3):
        transcribed(client, engine, 1000 + number, "river bank")
    repeated = client.get("/v1/search?q=river&q=bank", headers=auth())
    assert_problem(repeated, 400, "invalid_request")
    cursor = search(client, q="river", limit="1")["next_cursor"]
    assert cursor
    other_query = client.get(
        "/v1/search", query_string={"q": "bank", "cursor": cursor}, headers=auth()
    )
    assert "another q" in assert_problem(other_query, 400, "invalid_request")["detail"]
    listing = client.get("/v1/transcriptions?limit=1", headers=auth()).get_json()["next_cursor"]
    assert listing
    foreign = client.get(
        "/v1/search", query_string={"q": "river", "cursor": listing}, headers=auth()
    )
    assert_problem(foreign, 400, "invalid_request")
    unauthenticated = client.get("/v1/search?q=river")
    assert_problem(unauthenticated, 401, "unauthorized")


HOSTILE = [
    "'",
    "''",
    "'river'",
    "river'",
    "&|!:*()",
    "river & bank | !sea",
    "river:*",
    "river:A",
    "(river",
    "<->",
    "river <-> bank",
    "\\",
    "river\\",
    "\\'river",
    "!river",
    "-river",
    "river**",
    "*river",
    "ri*ver",
    '"river',
    'river"',
    '"river bank',
    '"" river ""',
    "'river':* & 'bank'",
    "%",
    "river%",
    "naïve café",
    "東京 ラーメン",
    "Straße",
    "😀 river",
    "river\u200bbank",
    "\u202eriver",
    "river\tbank\nsea",
    "x" * 200,
    " ".join(["a*"] * 66),
    '"' + " ".join(["river"] * 39) + '"',
]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_are_answered_never_a_500(client: Any, engine: Engine, q: str) -> None:
    transcribed(client, engine, 1000, "river bank", "naïve café in 東京", "Straße")
    response = client.get("/v1/search", query_string={"q": q}, headers=auth())
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert_problem(response, 400, "invalid_request")
    else:
        assert isinstance(response.get_json()["items"], list)


def test_unicode_words_are_found(client: Any, engine: Engine) -> None:
    job_id = transcribed(client, engine, 1000, "A naïve café in 東京.", "Die Straße.")
    assert hits(client, "café") == [(job_id, 0.0)]
    assert hits(client, "straße") == [(job_id, 10.0)]
    assert hits(client, "naï*") == [(job_id, 0.0)]


def test_the_snippet_holds_no_markup_but_its_marks(client: Any, engine: Engine) -> None:
    hostile = (
        'river <script>alert("x")</script> <img src=x onerror=alert(1)> & '
        "'quoted' <b>bold</b> &amp; river</mark><mark> river"
    )
    transcribed(client, engine, 1000, hostile)
    [item] = search(client, q="river")["items"]
    snippet = item["snippet"]
    assert "<mark>river</mark>" in snippet
    bare = snippet.replace("<mark>", "").replace("</mark>", "")
    assert not re.search(r"[<>\"']", bare), snippet
    # What was said is all there, escaped: an "&amp;" said is "&amp;amp;", a tag is text.
    assert (
        "&lt;b&gt;bold&lt;/b&gt; &amp;amp; <mark>river</mark>&lt;/mark&gt;&lt;mark&gt;" in snippet
    )
    assert "&#x27;quoted&#x27;" in snippet


def test_only_stop_words_find_nothing(client: Any, engine: Engine) -> None:
    transcribed(client, engine, 1000, JFK)
    assert hits(client, "what your") == []
    assert hits(client, "your country") != []
