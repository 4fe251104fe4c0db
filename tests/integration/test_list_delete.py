"""Listing and deleting one's transcriptions, through the real submit function.

``create_app("submit", "functions/submit/main.py")`` loads the real entry point, with real
PostgreSQL, Redis, the Pub/Sub emulator and fake-gcs-server behind it, and two API keys:
each sees only its own jobs, pages through them with the opaque cursor, and gives them up
without touching the other key's access.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe.api.auth import key_fingerprint
from podscribe.db import transaction
from podscribe.jobs import (
    JobStatus,
    claim_for_dispatch,
    fail,
    remove_access,
    start_running,
    succeed,
)
from podscribe.settings import get_settings
from podscribe.storage import (
    TRANSCRIPT_FORMATS,
    TranscriptStore,
    checkpoint_object_name,
    transcript_object_name,
)
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    episode_url,
    submit_test_client,
)

COLLECTION = 1535809341


def make_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    return submit_test_client(monkeypatch, **env)


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return make_client(monkeypatch)


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(client: Any, episode: int, key: str = API_KEY) -> str:
    response = client.post(
        "/v1/transcriptions", json={"url": episode_url(COLLECTION, episode)}, headers=auth(key)
    )
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    return str(response.get_json()["id"])


def page(client: Any, key: str = API_KEY, **query: str) -> dict[str, Any]:
    response = client.get("/v1/transcriptions", query_string=query, headers=auth(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.get_json())


def walk(client: Any, key: str = API_KEY, **query: str) -> list[str]:
    """Every id of a key's list, page by page."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        body = page(client, key, **query, **({"cursor": cursor} if cursor else {}))
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["code"] == code and body["status"] == status and body["detail"]
    return dict(body)


def succeed_with_objects(engine: Engine, store: TranscriptStore, job_id: str) -> list[str]:
    """Put every format and a checkpoint in the bucket and mark the job succeeded."""
    objects = {
        fmt: store.put(transcript_object_name(job_id, fmt), f"{fmt} text", content_type)
        for fmt, content_type in TRANSCRIPT_FORMATS.items()
    }
    checkpoint = store.put(checkpoint_object_name(job_id), "{}", "application/json")
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60)
        succeed(conn, job_id, transcript_objects=objects)
    return [*objects.values(), checkpoint]


def test_paging_through_120_jobs_has_no_gaps_or_repeats_while_new_ones_arrive(
    client: Any,
) -> None:
    submitted = [submit(client, 1000 + number) for number in range(120)]
    others = [submit(client, 5000 + number, key=OTHER_KEY) for number in range(3)]
    seen: list[str] = []
    arrived: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        body = page(client, limit="25", **({"cursor": cursor} if cursor else {}))
        pages += 1
        assert len(body["items"]) <= 25
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        # New jobs (of this key and the other) arrive between every two pages.
        arrived += [submit(client, 2000 + pages * 10 + number) for number in range(2)]
        submit(client, 6000 + pages, key=OTHER_KEY)
        if cursor is None:
            break
    assert pages == 5
    assert seen == list(reversed(submitted)), "newest first, each job once, none missing"
    fresh = walk(client, limit="40")
    assert fresh == list(reversed(submitted + arrived)), "a fresh walk starts with the new ones"
    assert not set(fresh) & set(others)
    assert set(others) <= set(walk(client, OTHER_KEY))


def test_the_default_page_is_20_and_items_are_job_documents(client: Any) -> None:
    ids = [submit(client, 1000 + number) for number in range(21)]
    body = page(client)
    assert len(body["items"]) == 20 and body["next_cursor"]
    first = body["items"][0]
    assert first["id"] == ids[-1] and first["status"] == "queued"
    assert first["links"]["self"].endswith(f"/v1/transcriptions/{ids[-1]}")
    rest = page(client, cursor=body["next_cursor"])
    assert [item["id"] for item in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None
    assert page(client, OTHER_KEY) == {"items": [], "next_cursor": None}


def test_status_filters_the_list_and_a_cursor_keeps_its_filter(client: Any, engine: Engine) -> None:
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    queued = [submit(client, 1000 + number) for number in range(4)]
    done = submit(client, 1100)
    succeed_with_objects(engine, store, done)
    succeeded = page(client, status="succeeded")
    assert [item["id"] for item in succeeded["items"]] == [done]
    assert succeeded["items"][0]["links"]["transcripts"]
    assert walk(client, status="queued", limit="3") == list(reversed(queued))
    assert page(client, status="failed") == {"items": [], "next_cursor": None}
    cursor = page(client, status="queued", limit="2")["next_cursor"]
    assert cursor
    for other in ({}, {"status": "succeeded"}):
        refused = client.get(
            "/v1/transcriptions", query_string={"cursor": cursor, **other}, headers=auth()
        )
        assert "made for status=queued" in assert_problem(refused, 400, "invalid_request")["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=1.5",
        "limit=abc",
        "limit=",
        "limit=5&limit=6",
        "status=done",
        "status=QUEUED",
        "status=",
        "cursor=",
        "cursor=!!!!",
        "cursor=bm90IGpzb24",
        "cursor=eyJ2IjoxfQ",
        "cursor=" + "A" * 600,
        "state=queued",
    ],
)
def test_bad_queries_are_400(client: Any, query: str) -> None:
    response = client.get(f"/v1/transcriptions?{query}", headers=auth())
    assert_problem(response, 400, "invalid_request")


def test_a_cursor_of_another_key_pages_only_ones_own_jobs(client: Any) -> None:
    mine = [submit(client, 1000 + number) for number in range(3)]
    theirs = [submit(client, 3000 + number, key=OTHER_KEY) for number in range(3)]
    cursor = page(client, OTHER_KEY, limit="1")["next_cursor"]
    assert cursor
    borrowed = page(client, cursor=cursor)
    assert not {item["id"] for item in borrowed["items"]} & set(theirs)
    assert {item["id"] for item in borrowed["items"]} <= set(mine)


def test_delete_by_one_key_leaves_the_other_keys_access(client: Any, engine: Engine) -> None:
    job_id = submit(client, 1000)
    assert submit(client, 1000, key=OTHER_KEY) == job_id
    response = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(client.get(f"/v1/transcriptions/{job_id}", headers=auth()), 404, "job_not_found")
    assert job_id not in walk(client)
    assert client.get(f"/v1/transcriptions/{job_id}", headers=auth(OTHER_KEY)).status_code == 200
    assert walk(client, OTHER_KEY) == [job_id]
    again = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
    assert_problem(again, 404, "job_not_found")
    with transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 1


def test_delete_by_the_last_key_removes_the_row_and_the_transcripts(
    client: Any, engine: Engine
) -> None:
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    job_id = submit(client, 1000)
    submit(client, 1000, key=OTHER_KEY)
    names = succeed_with_objects(engine, store, job_id)
    assert all(store.exists(name) for name in names)
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth(OTHER_KEY)).status_code == 204
    assert all(store.exists(name) for name in names), "another key still has access"
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    assert not any(store.exists(name) for name in names)
    with transaction(engine) as conn:
        for table in ("jobs", "job_access", "job_events"):
            count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            assert count == 0, table
    assert_problem(client.get(f"/v1/transcriptions/{job_id}", headers=auth()), 404, "job_not_found")
    gone = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
    assert_problem(gone, 404, "job_not_found")
    assert page(client) == {"items": [], "next_cursor": None}


def test_the_last_key_cannot_delete_a_running_job_until_it_ends(
    client: Any, engine: Engine
) -> None:
    job_id = submit(client, 1000)
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60)
    refused = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
    assert_problem(refused, 409, "job_active")
    assert client.get(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 200
    with transaction(engine) as conn:
        fail(conn, job_id, JobStatus.RUNNING, code="transcription_failed", message="test")
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    assert_problem(client.get(f"/v1/transcriptions/{job_id}", headers=auth()), 404, "job_not_found")


def test_a_key_that_is_not_the_last_may_give_up_a_running_job(client: Any, engine: Engine) -> None:
    job_id = submit(client, 1000)
    submit(client, 1000, key=OTHER_KEY)
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    body = client.get(f"/v1/transcriptions/{job_id}", headers=auth(OTHER_KEY)).get_json()
    assert body["status"] == "dispatched"


def test_deleting_a_job_one_cannot_see_is_404_like_a_missing_one(client: Any) -> None:
    theirs = submit(client, 1000, key=OTHER_KEY)
    for job_id in (theirs, "00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
        assert_problem(response, 404, "job_not_found")
    assert client.get(f"/v1/transcriptions/{theirs}", headers=auth(OTHER_KEY)).status_code == 200
    assert_problem(client.delete(f"/v1/transcriptions/{theirs}"), 401, "unauthorized")
    assert_problem(client.get("/v1/transcriptions"), 401, "unauthorized")


def test_a_deleted_episode_submitted_again_is_a_new_job(client: Any) -> None:
    job_id = submit(client, 1000)
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    again = submit(client, 1000)
    assert again != job_id
    assert walk(client) == [again]


def test_listing_spends_the_read_budget_and_deleting_the_create_budget(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(
        monkeypatch, PODSCRIBE_RATE_LIMIT_PER_KEY="3", PODSCRIBE_RATE_LIMIT_READS_PER_KEY="5"
    )
    job_id = submit(client, 1000)
    listed = client.get("/v1/transcriptions", headers=auth())
    assert listed.headers["RateLimit-Policy"] == "5;w=60"
    assert listed.headers["RateLimit-Remaining"] == "4"
    deleted = client.delete(f"/v1/transcriptions/{job_id}", headers=auth())
    assert deleted.status_code == 204
    assert deleted.headers["RateLimit-Policy"] == "3;w=60"
    assert deleted.headers["RateLimit-Remaining"] == "1"


def test_a_submission_racing_the_last_keys_delete_gets_a_live_job(
    client: Any, engine: Engine
) -> None:
    job_id = submit(client, 1000)
    answers: list[str] = []
    with engine.connect() as conn:
        deleting = conn.begin()
        assert remove_access(conn, job_id, key_fingerprint(API_KEY)).job_deleted
        # Another key asks for the episode while the delete is not yet committed: its
        # insert waits on the deleted row, then makes the episode's job anew.
        racer = threading.Thread(target=lambda: answers.append(submit(client, 1000, OTHER_KEY)))
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive(), "the submission waits for the delete to commit"
        deleting.commit()
    racer.join(timeout=30)
    assert answers and answers[0] != job_id
    assert (
        client.get(f"/v1/transcriptions/{answers[0]}", headers=auth(OTHER_KEY)).status_code == 200
    )
    assert walk(client, OTHER_KEY) == answers
