"""The submit function through functions-framework's test client, against real services.

``create_app("submit", "functions/submit/main.py")`` loads the real entry point; PostgreSQL,
Redis, the Pub/Sub emulator and fake-gcs-server are real. The environment is the function's
only input, exactly as in production.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import srt
from sqlalchemy.engine import Engine

from podscribe.api.auth import key_fingerprint
from podscribe.db import transaction
from podscribe.errors import public_message
from podscribe.jobs import (
    JobStatus,
    claim_for_dispatch,
    fail,
    get_job,
    start_running,
    succeed,
    update_job_fields,
)
from podscribe.settings import get_settings, load_settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore, transcript_object_name
from podscribe.transcription.formats import Transcript, render_json
from podscribe.transcription.segments import Segment
from tests.integration.submit_support import (
    API_KEY,
    EPISODE_SPELLINGS,
    EPISODE_URL,
    OTHER_KEY,
    episode_url,
    pull_job_ids,
    submit_test_client,
)
from tests.services import free_port, throwaway_database

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def make_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    return submit_test_client(monkeypatch, **env)


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return make_client(monkeypatch)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:podscribe:problem:{code}"
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return dict(body)


def submit(client: Any, url: str = EPISODE_URL, key: str = API_KEY, **fields: Any) -> Any:
    return client.post(
        "/v1/transcriptions",
        json={"url": url, **fields},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_a_new_episode_is_queued_and_its_wake_up_arrives(
    client: Any, subscription: tuple[str, str], engine: Engine
) -> None:
    response = submit(client, language="en", model="tiny.en", callback_url="https://example.com/h")
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["apple"] == {"collection_id": 1535809341, "episode_id": 1000651234567}
    assert body["requested"] == {"language": "en", "model": "tiny.en"}
    assert response.headers["Location"].endswith(f"/v1/transcriptions/{body['id']}")
    assert int(response.headers["RateLimit-Remaining"]) == 999
    assert pull_job_ids(subscription[1]) == [body["id"]]
    with transaction(engine) as conn:
        job = get_job(conn, body["id"], key_fingerprint=key_fingerprint(API_KEY))
        callback = conn.execute(sa.text("SELECT callback_url FROM job_access")).scalar()
    assert job.status is JobStatus.QUEUED and job.requested_model == "tiny.en"
    assert callback == "https://example.com/h"


def test_the_same_episode_by_any_spelling_is_one_job(
    client: Any, subscription: tuple[str, str], engine: Engine
) -> None:
    first = submit(client, EPISODE_SPELLINGS[0])
    assert first.status_code == 202
    for spelling in EPISODE_SPELLINGS[1:]:
        again = submit(client, spelling)
        assert again.status_code == 200, spelling
        assert again.get_json()["id"] == first.get_json()["id"]
    assert pull_job_ids(subscription[1]) == [first.get_json()["id"]]  # one wake-up only
    with transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 1


def test_status_shows_progress_episode_timings_and_links(client: Any, engine: Engine) -> None:
    job_id = submit(client).get_json()["id"]
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60, model="tiny.en", device="cpu")
        update_job_fields(
            conn,
            job_id,
            {
                "episode": {"show": "Some Show", "title": "Pilot", "audio_url": "https://a/b"},
                "checkpoint_object": f"transcripts/{job_id}/checkpoint.json",
            },
        )
    response = client.get(f"/v1/transcriptions/{job_id}", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "running"
    assert body["attempts"] == 1
    assert body["episode"]["title"] == "Pilot"
    assert body["transcription"]["model"] == "tiny.en"
    assert body["timings"]["started_at"] is not None
    assert body["error"] is None
    assert body["partial_transcript"] == {"available": True}
    assert body["links"]["self"] == f"http://localhost/v1/transcriptions/{job_id}"
    assert body["links"]["partial_transcript"].endswith("transcript?format=json&partial=true")
    assert "transcripts" not in body["links"]


def test_a_failed_job_shows_its_error_and_a_transient_failure_is_retried_on_resubmission(
    client: Any, subscription: tuple[str, str], engine: Engine
) -> None:
    job_id = submit(client).get_json()["id"]
    with transaction(engine) as conn:
        fail(conn, job_id, JobStatus.QUEUED, code="fetch_failed", message="10.0.0.7 reset")
    failed = client.get(f"/v1/transcriptions/{job_id}", headers=AUTH).get_json()
    assert failed["status"] == "failed"
    # The recorded detail (an address) is for the logs; the caller reads the code's message.
    assert failed["error"] == {
        "code": "fetch_failed",
        "message": public_message("fetch_failed"),
    }
    assert_problem(
        client.get(f"/v1/transcriptions/{job_id}/transcript?format=txt", headers=AUTH),
        409,
        "transcript_not_ready",
    )
    # A fault of the moment (not of the episode, see test_submit_budgets.py) is tried again.
    again = submit(client)
    assert again.status_code == 202
    assert again.get_json()["id"] == job_id and again.get_json()["status"] == "queued"
    assert pull_job_ids(subscription[1]) == [job_id, job_id]


def test_transcripts_stream_with_their_content_types(client: Any, engine: Engine) -> None:
    job_id = submit(client).get_json()["id"]
    assert_problem(
        client.get(f"/v1/transcriptions/{job_id}/transcript?format=srt", headers=AUTH),
        409,
        "transcript_not_ready",
    )
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    contents = {fmt: f"{fmt} of {job_id}\n" + "word " * 100_000 for fmt in TRANSCRIPT_FORMATS}
    objects = {}
    for fmt, text in contents.items():
        objects[fmt] = store.put(transcript_object_name(job_id, fmt), text, TRANSCRIPT_FORMATS[fmt])
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60)
        succeed(conn, job_id, transcript_objects=objects)
    status = client.get(f"/v1/transcriptions/{job_id}", headers=AUTH).get_json()
    assert status["progress"] == 1.0
    assert set(status["links"]["transcripts"]) == set(TRANSCRIPT_FORMATS)
    for fmt, content_type in TRANSCRIPT_FORMATS.items():
        response = client.get(f"/v1/transcriptions/{job_id}/transcript?format={fmt}", headers=AUTH)
        assert response.status_code == 200
        assert response.is_streamed
        assert response.mimetype == content_type
        assert response.get_data(as_text=True) == contents[fmt]
    assert_problem(
        client.get(f"/v1/transcriptions/{job_id}/transcript?format=docx", headers=AUTH),
        400,
        "invalid_request",
    )


def test_a_transcript_removed_from_storage_is_gone_and_a_new_submission_transcribes_it_again(
    client: Any, subscription: tuple[str, str], engine: Engine
) -> None:
    job_id = submit(client).get_json()["id"]
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    objects = {
        fmt: store.put(transcript_object_name(job_id, fmt), f"{fmt} words", content_type)
        for fmt, content_type in TRANSCRIPT_FORMATS.items()
    }
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60)
        succeed(conn, job_id, transcript_objects=objects)
    url = f"/v1/transcriptions/{job_id}/transcript"
    assert client.get(f"{url}?format=srt", headers=AUTH).status_code == 200
    store.delete(objects["srt"])  # what a lifecycle Delete rule on the bucket does

    gone = client.get(f"{url}?format=srt", headers=AUTH)
    assert_problem(gone, 410, "transcript_gone")
    assert "submit the episode again" in gone.get_json()["detail"]
    status = client.get(f"/v1/transcriptions/{job_id}", headers=AUTH).get_json()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "transcript_gone"
    assert_problem(client.get(f"{url}?format=txt", headers=AUTH), 409, "transcript_not_ready")

    again = submit(client)
    assert again.status_code == 202
    assert again.get_json()["id"] == job_id and again.get_json()["status"] == "queued"
    assert pull_job_ids(subscription[1]) == [job_id, job_id]  # woken again for the new run
    with transaction(engine) as conn:
        assert get_job(conn, job_id).attempts == 0


def test_a_running_job_serves_its_partial_transcript_in_every_format(
    client: Any, engine: Engine
) -> None:
    job_id = submit(client).get_json()["id"]
    partial = Transcript(
        segments=(
            Segment(0.0, 2.5, "Welcome to the show."),
            Segment(3.0, 5.0, "Today: caching & <tags>."),
        ),
        language="en",
        duration=600.0,
        model="tiny.en",
        device="cuda",
        compute_type="float16",
        complete=False,
        transcribed_until=5.0,
    )
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    name = store.put(
        f"transcripts/{job_id}/checkpoint.json", render_json(partial), "application/json"
    )
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        start_running(conn, job_id, lease_seconds=60)
        update_job_fields(conn, job_id, {"checkpoint_object": name})
    url = f"/v1/transcriptions/{job_id}/transcript"
    as_json = client.get(f"{url}?format=json&partial=true", headers=AUTH)
    assert as_json.status_code == 200
    assert Transcript.from_json(as_json.get_data()).segments == partial.segments
    captions = list(
        srt.parse(client.get(f"{url}?format=srt&partial=1", headers=AUTH).get_data(as_text=True))
    )
    assert [c.content for c in captions] == ["Welcome to the show.", "Today: caching & <tags>."]
    vtt = client.get(f"{url}?format=vtt&partial=true", headers=AUTH)
    assert vtt.mimetype == "text/vtt"
    assert "caching &amp; &lt;tags&gt;." in vtt.get_data(as_text=True)
    text = client.get(f"{url}?format=txt&partial=true", headers=AUTH).get_data(as_text=True)
    assert "Welcome to the show." in text
    assert vtt.headers["Cache-Control"] == "no-store"
    assert_problem(client.get(f"{url}?format=txt", headers=AUTH), 409, "transcript_not_ready")


def test_a_job_is_visible_only_to_keys_that_submitted_it(client: Any) -> None:
    job_id = submit(client).get_json()["id"]
    assert_problem(
        client.get(
            f"/v1/transcriptions/{job_id}", headers={"Authorization": f"Bearer {OTHER_KEY}"}
        ),
        404,
        "job_not_found",
    )
    # Asking for the same episode grants the other key access to the same job.
    assert submit(client, key=OTHER_KEY).get_json()["id"] == job_id
    other = client.get(
        f"/v1/transcriptions/{job_id}", headers={"Authorization": f"Bearer {OTHER_KEY}"}
    )
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("headers", "detail_part"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Basic dGVzdDp0ZXN0"}, "Bearer"),
        ({"Authorization": "Bearer wrong-key"}, "not valid"),
        ({"Authorization": f"Bearer {API_KEY}x"}, "not valid"),
    ],
)
def test_unauthenticated_requests_are_401(
    client: Any, headers: dict[str, str], detail_part: str
) -> None:
    response = client.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=headers)
    body = assert_problem(response, 401, "unauthorized")
    assert detail_part in body["detail"]
    assert API_KEY not in response.get_data(as_text=True)


def test_input_errors_have_their_status_and_code(client: Any) -> None:
    post = "/v1/transcriptions"
    assert_problem(
        client.post(post, data="{", headers={**AUTH, "Content-Type": "application/json"}),
        400,
        "invalid_request",
    )
    assert_problem(client.post(post, json=[EPISODE_URL], headers=AUTH), 400, "invalid_request")
    assert_problem(client.post(post, json={}, headers=AUTH), 400, "invalid_request")
    assert_problem(submit(client, colour="red"), 400, "invalid_request")
    assert_problem(submit(client, model="../../etc/passwd"), 400, "invalid_request")
    assert_problem(submit(client, language="english"), 400, "invalid_request")
    assert_problem(submit(client, callback_url="http://example.com/hook"), 400, "invalid_request")
    assert_problem(submit(client, callback_url="https://169.254.169.254/x"), 400, "invalid_request")
    assert_problem(submit(client, callback_url="https://localhost/x"), 400, "invalid_request")
    assert_problem(
        client.post(
            post,
            data=json.dumps({"url": EPISODE_URL}),
            headers={**AUTH, "Content-Type": "text/plain"},
        ),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        client.post(
            post,
            data=b'{"url": "' + b"a" * 20_000 + b'"}',
            headers={**AUTH, "Content-Type": "application/json"},
        ),
        413,
        "payload_too_large",
    )
    assert_problem(submit(client, "https://example.com/podcast/id1?i=2"), 422, "not_apple_podcasts")
    assert_problem(
        submit(client, "https://podcasts.apple.com/us/podcast/some-show/id1535809341"),
        422,
        "not_an_episode",
    )
    assert_problem(
        submit(client, episode_url(99999999999999999999 // 10, 1)), 422, "invalid_episode_url"
    )
    assert_problem(
        client.get(f"/v1/transcriptions/{uuid.uuid4()}", headers=AUTH), 404, "job_not_found"
    )
    assert_problem(client.get("/v1/transcriptions/not-a-uuid", headers=AUTH), 404, "job_not_found")
    assert_problem(client.get("/v1/nothing-here", headers=AUTH), 404, "not_found")
    response = client.delete("/v1/transcriptions", headers=AUTH)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD, POST"


def test_rate_limits_answer_429_with_headers(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(monkeypatch, PODSCRIBE_RATE_LIMIT_PER_KEY="3")
    answers = [submit(client) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [202, 200, 200, 429]
    assert [answer.headers["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0"]
    limited = assert_problem(answers[-1], 429, "rate_limited")
    assert "try again" in limited["detail"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert answers[-1].headers["RateLimit-Limit"] == "3"
    assert answers[-1].headers["RateLimit-Policy"] == "3;w=60"


def test_a_database_outage_is_503_with_retry_after(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    client = make_client(monkeypatch, PODSCRIBE_DATABASE_URL=down)
    response = submit(client)
    body = assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "postgres@" not in body["detail"] or "nowhere" not in body["detail"]
    assert_problem(client.get("/healthz?ready=1"), 503, "database_unavailable")
    assert_problem(client.get("/readyz"), 503, "database_unavailable")
    assert client.get("/healthz").get_json() == {"status": "ok"}  # alive, not ready


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready", "database": "ok"}
    assert client.get("/healthz?ready=1").status_code == 200


def test_publish_failure_still_answers_202_and_leaves_the_job_queued(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    # Pub/Sub unreachable: nothing listens on this port.
    client = make_client(monkeypatch, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}")
    response = submit(client)
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    with transaction(engine) as conn:
        job = get_job(conn, job_id)
    assert job.status is JobStatus.QUEUED  # the sweep re-sends its wake-up


def test_the_openapi_document_is_served(client: Any) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost"}]
    assert set(document["paths"]) >= {
        "/v1/transcriptions",
        "/v1/transcriptions/{job_id}",
        "/v1/transcriptions/{job_id}/transcript",
    }


def test_importing_the_entry_point_needs_no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing configured and nothing reachable: loading the function must still work, and
    # the first request (not the import) is what fails, cleanly.
    for name in ("PODSCRIBE_DATABASE_URL", "PUBSUB_EMULATOR_HOST", "PODSCRIBE_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PODSCRIBE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    client = make_client(monkeypatch)
    assert client.get("/healthz").status_code == 200
    assert_problem(submit(client), 401, "unauthorized")
    settings = load_settings()
    assert settings.api_keys == []


def test_paths_the_framework_refuses_are_problems_too(client: Any) -> None:
    # functions-framework's own rules refuse these before the target runs.
    assert_problem(client.get("/favicon.ico"), 404, "not_found")
    assert_problem(client.get("/v1/transcriptions/a%0Ab", headers=AUTH), 404, "not_found")


def test_an_unexpected_failure_is_a_bare_500(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database nobody migrated: the SQL error must stay in our logs.
    with throwaway_database() as unmigrated:
        client = make_client(monkeypatch, PODSCRIBE_DATABASE_URL=unmigrated)
        response = submit(client)
        body = assert_problem(response, 500, "internal_error")
    assert "jobs" not in body["detail"] and "relation" not in response.get_data(as_text=True)


def test_a_language_the_model_cannot_transcribe_queues_nothing(client: Any) -> None:
    """Key A's "zz" (or "fr" on the English-only default) must not become the episode's job."""
    url = episode_url(1535809341, 1000651239999)
    for language in ("zz", "fr"):
        body = assert_problem(submit(client, url, language=language), 422, "unsupported_language")
        assert "tiny.en" in body["detail"]
    assert_problem(submit(client, url, language="fr", model="base.en"), 422, "unsupported_language")
    created = submit(client, url, key=OTHER_KEY, language="en")
    assert created.status_code == 202, created.get_data(as_text=True)
    assert created.get_json()["requested"] == {"language": "en", "model": None}
