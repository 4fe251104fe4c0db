"""``Idempotency-Key`` on ``POST /v1/transcriptions``, through the real submit function.

``create_app("submit", "functions/submit/main.py")`` loads the real entry point with real
PostgreSQL, Redis, the Pub/Sub emulator and fake-gcs-server behind it. A repeated key gets the
first answer and does nothing again; keys are the caller's own; a key reused for another
request, or met while its first request is in flight, is refused; only successes are stored,
and entries expire. The last test puts the Python client behind a proxy that loses the first
answer: its retry, with the same key, makes one job.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from podscribe.api.auth import key_fingerprint
from podscribe.api.idempotency import parse_idempotency_key, purge_expired, request_hash
from podscribe.api.request_bodies import SubmitRequest
from podscribe.client import PodscribeClient
from podscribe.db import transaction
from podscribe.errors import InvalidRequestError
from podscribe.jobs import JobStatus, fail
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    episode_url,
    pull_job_ids,
    submit_test_client,
)

COLLECTION = 1535809341
URL = episode_url(COLLECTION, 1000651230001)
OTHER_URL = episode_url(COLLECTION, 1000651230002)


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def post(
    client: Any,
    idempotency_key: str | None,
    body: Any = None,
    *,
    key: str = API_KEY,
    raw: str | None = None,
) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if raw is not None:
        return client.post(
            "/v1/transcriptions", data=raw, headers=headers, content_type="application/json"
        )
    return client.post("/v1/transcriptions", json=body or {"url": URL}, headers=headers)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert body["type"] == f"urn:podscribe:problem:{code}"
    return dict(body)


def count(engine: Engine, sql: str, **params: Any) -> int:
    with transaction(engine) as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def test_a_repeat_gets_the_first_answer_and_does_nothing_again(
    client: Any, engine: Engine, subscription: tuple[str, str]
) -> None:
    key = str(uuid.uuid4())
    first = post(client, key)
    assert first.status_code == 202, first.get_data(as_text=True)
    assert "Idempotent-Replayed" not in first.headers
    job_id = first.get_json()["id"]
    assert pull_job_ids(subscription[1]) == [job_id]
    # The job fails: a plain resubmission would now requeue it and publish a wake-up.
    with transaction(engine) as conn:
        fail(conn, job_id, JobStatus.QUEUED, code="fetch_failed", message="unreachable")
    for _ in range(2):
        again = post(client, key)
        assert again.status_code == 202
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()
        assert again.headers["Location"] == first.headers["Location"]
        assert again.headers["Cache-Control"] == "no-store"
        assert "RateLimit-Remaining" in again.headers  # admitted (and counted) like any POST
    assert count(engine, "SELECT count(*) FROM jobs") == 1
    assert count(engine, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 1  # no requeue
    assert pull_job_ids(subscription[1], timeout=3) == []  # no second publish
    # Without the key the same body is an ordinary resubmission: the failed job is requeued.
    assert post(client, None).status_code == 202
    assert count(engine, "SELECT count(*) FROM jobs WHERE status = 'queued'") == 1


def test_the_same_request_spelt_differently_is_replayed_and_another_is_422(
    client: Any, engine: Engine
) -> None:
    key = "order-and-spacing"
    first = post(client, key, {"url": URL, "model": "tiny.en"})
    assert first.status_code == 202
    respelt = post(client, key, raw=f'{{ "model" : "tiny.en", "language": null, "url": "{URL}" }}')
    assert respelt.status_code == 202 and respelt.headers["Idempotent-Replayed"] == "true"
    assert respelt.get_json() == first.get_json()
    for other in ({"url": OTHER_URL}, {"url": URL}, {"url": URL, "model": "base.en"}):
        reused = assert_problem(post(client, key, other), 422, "idempotency_key_reused")
        assert "different request" in reused["detail"]
    assert count(engine, "SELECT count(*) FROM jobs") == 1


def test_keys_of_different_api_keys_are_independent(client: Any, engine: Engine) -> None:
    mine = post(client, "shared-value", {"url": URL})
    theirs = post(client, "shared-value", {"url": OTHER_URL}, key=OTHER_KEY)
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    # Each key replays its own first answer.
    assert post(client, "shared-value", {"url": URL}).get_json()["id"] == mine.get_json()["id"]
    again = post(client, "shared-value", {"url": OTHER_URL}, key=OTHER_KEY)
    assert again.get_json()["id"] == theirs.get_json()["id"]
    fingerprints = {key_fingerprint(API_KEY), key_fingerprint(OTHER_KEY)}
    with transaction(engine) as conn:
        stored = set(
            conn.execute(sa.text("SELECT key_fingerprint FROM idempotency_keys")).scalars()
        )
    assert stored == fingerprints


@pytest.mark.parametrize(
    "value",
    ["", "k" * 256, "clé", "two words", "tab\there", "del\x7f", "bell\x07", " padded"],
    ids=["empty", "256-chars", "non-ascii", "space", "tab", "del", "control", "leading-space"],
)
def test_a_malformed_key_is_400_and_nothing_happens(
    client: Any, engine: Engine, value: str
) -> None:
    body = assert_problem(post(client, value), 400, "invalid_request")
    assert "Idempotency-Key" in body["detail"]
    assert count(engine, "SELECT count(*) FROM jobs") == 0
    assert count(engine, "SELECT count(*) FROM idempotency_keys") == 0


def test_a_key_sent_twice_is_refused_as_such() -> None:
    with pytest.raises(InvalidRequestError, match="send one Idempotency-Key header, not 2"):
        parse_idempotency_key(["one", "two"])
    assert parse_idempotency_key([]) is None
    assert parse_idempotency_key(["8e03978e-40d5-43e8-bc93-6894a57f9324"]) is not None


def test_the_longest_key_is_accepted_and_a_doubled_header_is_not(
    client: Any, engine: Engine
) -> None:
    longest = "~" + "K" * 253 + "!"
    assert post(client, longest).status_code == 202
    assert count(engine, "SELECT length(idempotency_key) FROM idempotency_keys") == 255
    headers = [
        ("Authorization", f"Bearer {API_KEY}"),
        ("Idempotency-Key", "one"),
        ("Idempotency-Key", "two"),
    ]
    doubled = client.post("/v1/transcriptions", json={"url": OTHER_URL}, headers=headers)
    # WSGI joins repeated headers with ", " (the space is refused); one that is not is refused
    # as sent twice.
    assert "Idempotency-Key" in assert_problem(doubled, 400, "invalid_request")["detail"]
    assert count(engine, "SELECT count(*) FROM jobs") == 1


def test_concurrent_first_requests_are_processed_once(
    client: Any, engine: Engine, subscription: tuple[str, str]
) -> None:
    start = threading.Barrier(10)
    answers: list[Any] = [None] * 10

    def send(index: int) -> None:
        start.wait()
        answers[index] = post(client, "at-once")

    threads = [threading.Thread(target=send, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    processed = [
        a for a in answers if a.status_code == 202 and "Idempotent-Replayed" not in a.headers
    ]
    assert len(processed) == 1, [a.status_code for a in answers]
    job = processed[0].get_json()
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "idempotency_key_in_use")
            assert answer.headers["Retry-After"] == "1"
        else:
            assert answer.status_code == 202 and answer.get_json() == job
    assert count(engine, "SELECT count(*) FROM jobs") == 1
    assert pull_job_ids(subscription[1]) == [job["id"]]
    # Once the first is done, every repeat is its answer.
    assert post(client, "at-once").headers["Idempotent-Replayed"] == "true"


def test_a_key_in_flight_is_409_and_an_abandoned_one_is_taken_over(
    client: Any, engine: Engine
) -> None:
    mine = key_fingerprint(API_KEY)
    # Every field of the body as validated, defaults included (what submit hashes).
    fields = {name: field.default for name, field in SubmitRequest.model_fields.items()}
    fields["url"] = URL
    same = request_hash("POST", "/v1/transcriptions", fields)
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (key_fingerprint, idempotency_key, request_hash, "
                "created_at) VALUES (:f, 'busy', :h, now()), (:f, 'dead', :h, now() - "
                "interval '10 minutes')"
            ),
            {"f": mine, "h": same},
        )
    busy = post(client, "busy")
    assert_problem(busy, 409, "idempotency_key_in_use")
    assert busy.headers["Retry-After"] == "1"
    assert count(engine, "SELECT count(*) FROM jobs") == 0
    taken_over = post(client, "dead")
    assert taken_over.status_code == 202 and "Idempotent-Replayed" not in taken_over.headers
    assert (
        count(engine, "SELECT status FROM idempotency_keys WHERE idempotency_key = 'dead'") == 202
    )


def test_a_refused_first_request_is_not_stored(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    client = submit_test_client(monkeypatch, PODSCRIBE_KEY_MAX_ACTIVE_JOBS="1")
    # Refused by validation: the key is never held.
    bad = post(client, "fix-and-retry", {"url": "https://example.com/not-apple"})
    assert_problem(bad, 422, "not_apple_podcasts")
    assert post(client, "fix-and-retry").status_code == 202  # fixed, same key: processed
    # Refused while processing (the key's one active job is taken): the key is released.
    refused = post(client, "over-budget", {"url": OTHER_URL})
    assert_problem(refused, 429, "too_many_active_jobs")
    assert count(engine, "SELECT count(*) FROM idempotency_keys") == 1
    assert count(engine, "SELECT count(*) FROM jobs") == 1
    roomier = submit_test_client(monkeypatch, PODSCRIBE_KEY_MAX_ACTIVE_JOBS="5")
    retried = post(roomier, "over-budget", {"url": OTHER_URL})
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert count(engine, "SELECT count(*) FROM jobs") == 2


def test_expired_entries_are_processed_afresh_and_purged(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    client = submit_test_client(monkeypatch, PODSCRIBE_IDEMPOTENCY_TTL_HOURS="1")
    assert post(client, "old").status_code == 202
    assert post(client, "kept", {"url": OTHER_URL}).status_code == 202
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - interval '61 minutes' "
                "WHERE idempotency_key = 'old'"
            )
        )
    # Past the TTL the key is free again: another request with it is processed, not 422.
    fresh = post(client, "old", {"url": OTHER_URL})
    assert fresh.status_code == 200 and "Idempotent-Replayed" not in fresh.headers
    assert post(client, "old", {"url": OTHER_URL}).headers["Idempotent-Replayed"] == "true"
    with transaction(engine) as conn:
        conn.execute(sa.text("UPDATE idempotency_keys SET created_at = now() - interval '2 hours'"))
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - interval '30 minutes' "
                "WHERE idempotency_key = 'kept'"
            )
        )
        assert purge_expired(conn, timedelta(hours=1)) == 1
        left = list(conn.execute(sa.text("SELECT idempotency_key FROM idempotency_keys")).scalars())
    assert left == ["kept"]


def test_the_openapi_document_declares_the_header_and_its_answers(client: Any) -> None:
    post_operation = client.get("/v1/openapi.json").get_json()["paths"]["/v1/transcriptions"][
        "post"
    ]
    (header,) = [p for p in post_operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and not header["required"]
    assert header["schema"]["maxLength"] == 255
    assert "idempotency_key_in_use" in post_operation["responses"]["409"]["description"]
    assert "Retry-After" in post_operation["responses"]["409"]["headers"]
    assert "idempotency_key_reused" in post_operation["responses"]["422"]["description"]


class LosingProxy:
    """Forwards HTTP/1.1 requests to ``upstream``; the first POST's answer is lost (the
    connection is closed instead), after the server has acted on it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.posts: list[str | None] = []  # each POST's Idempotency-Key
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, httpx.Client(base_url=self.upstream) as upstream:
            while (request := _read_request(conn)) is not None:
                method, path, headers, body = request
                answer = upstream.request(method, path, headers=headers, content=body)
                if method == "POST":
                    self.posts.append(headers.get("idempotency-key"))
                    if len(self.posts) == 1:
                        return  # acted on, answer lost
                head = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
                head += [f"{name}: {value}" for name, value in answer.headers.items()]
                conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + answer.content)


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        body += conn.recv(65536)
    headers.pop("host", None)
    method, path, _ = line.split(" ", 2)
    return method, path, headers, body


def test_the_client_retries_a_lost_answer_with_its_key_and_makes_one_job(
    client: Any, engine: Engine, subscription: tuple[str, str]
) -> None:
    app = client.application
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = LosingProxy(f"http://127.0.0.1:{server.server_port}")
    try:
        with PodscribeClient(proxy.url, API_KEY) as api:
            job = api.submit(URL)
            second = api.submit(OTHER_URL)
    finally:
        proxy.close()
        server.shutdown()
    assert len(proxy.posts) == 3
    first_key, retry_key, next_key = proxy.posts
    assert first_key and first_key == retry_key  # the retry carried the same key
    assert next_key and next_key != first_key  # a new submission, a fresh key
    assert job["status"] == "queued" and second["id"] != job["id"]
    assert count(engine, "SELECT count(*) FROM jobs") == 2
    assert sorted(pull_job_ids(subscription[1])) == sorted([job["id"], second["id"]])
    with transaction(engine) as conn:
        stored = conn.execute(
            sa.text("SELECT body FROM idempotency_keys WHERE idempotency_key = :k"),
            {"k": first_key},
        ).scalar_one()
    assert json.loads(json.dumps(stored))["id"] == job["id"]
