"""The submit function as a real ``functions-framework`` process on 127.0.0.1.

The same command line as the local profile and Cloud Functions; real PostgreSQL, Redis,
the Pub/Sub emulator and fake-gcs-server; requests over real sockets with httpx.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.jobs import JobStatus, get_job
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    EPISODE_SPELLINGS,
    EPISODE_URL,
    SUBMIT_SOURCE,
    RunningFunction,
    create_topic_and_subscription,
    functions_framework_process,
    limited_submit_environment,
    pull_job_ids,
)
from tests.services import free_port

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def subscription(pubsub_emulator: str) -> tuple[str, str]:
    return create_topic_and_subscription(TEST_PROJECT)


def start_submit(
    tmp_path: Path, database_url: str, topic: str, pubsub_host: str, **env: str
) -> Any:
    environment = limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_host,
        **env,
    )
    return functions_framework_process(
        SUBMIT_SOURCE, "submit", environment, tmp_path / "submit.log"
    )


@pytest.fixture
def submit_process(
    tmp_path: Path, database_url: str, pubsub_emulator: str, subscription: tuple[str, str]
) -> Iterator[RunningFunction]:
    with start_submit(tmp_path, database_url, subscription[0], pubsub_emulator) as running:
        yield running


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert "Traceback" not in response.text


def test_every_status_over_real_sockets(
    submit_process: RunningFunction, subscription: tuple[str, str]
) -> None:
    with httpx.Client(base_url=submit_process.url, timeout=30) as http:
        created = http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH)
        assert created.status_code == 202
        job_id = created.json()["id"]
        assert pull_job_ids(subscription[1]) == [job_id]  # the wake-up arrived
        assert (
            http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH).json()["id"]
            == job_id
        )
        status = http.get(f"/v1/transcriptions/{job_id}", headers=AUTH)
        assert status.status_code == 200 and status.json()["status"] == "queued"
        assert status.json()["links"]["self"] == f"{submit_process.url}/v1/transcriptions/{job_id}"

        problem(
            http.post(
                "/v1/transcriptions",
                content=b"{",
                headers={**AUTH, "Content-Type": "application/json"},
            ),
            400,
            "invalid_request",
        )
        problem(http.post("/v1/transcriptions", json={"url": EPISODE_URL}), 401, "unauthorized")
        problem(http.get(f"/v1/transcriptions/{uuid.uuid4()}", headers=AUTH), 404, "job_not_found")
        problem(
            http.get(f"/v1/transcriptions/{job_id}/transcript?format=txt", headers=AUTH),
            409,
            "transcript_not_ready",
        )
        problem(
            http.post(
                "/v1/transcriptions",
                content=b"url=x",
                headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
            ),
            415,
            "unsupported_media_type",
        )
        problem(
            http.post(
                "/v1/transcriptions", json={"url": "https://example.com/id1?i=2"}, headers=AUTH
            ),
            422,
            "not_apple_podcasts",
        )
        # 5 MB, declared: refused from the header, and the server stays healthy.
        huge = b'{"url": "' + b"x" * 5_000_000 + b'"}'
        problem(
            http.post(
                "/v1/transcriptions",
                content=huge,
                headers={**AUTH, "Content-Type": "application/json"},
            ),
            413,
            "payload_too_large",
        )

        # The same without Content-Length (chunked): the cap holds while reading.
        def chunks() -> Iterator[bytes]:
            yield b'{"url": "'
            for _ in range(100):
                yield b"y" * 50_000
            yield b'"}'

        problem(
            http.post(
                "/v1/transcriptions",
                content=chunks(),
                headers={**AUTH, "Content-Type": "application/json"},
            ),
            413,
            "payload_too_large",
        )
        assert http.get("/healthz?ready=1").json() == {"status": "ready", "database": "ok"}


def test_twenty_parallel_submissions_make_one_job(
    submit_process: RunningFunction, subscription: tuple[str, str], engine: Engine
) -> None:
    def send(index: int) -> httpx.Response:
        url = EPISODE_SPELLINGS[index % len(EPISODE_SPELLINGS)]
        with httpx.Client(base_url=submit_process.url, timeout=60) as http:
            return http.post("/v1/transcriptions", json={"url": url}, headers=AUTH)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 19 + [202]
    assert len({response.json()["id"] for response in responses}) == 1
    with transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 1
        events = conn.execute(sa.text("SELECT count(*) FROM job_events")).scalar()
    assert events == 1  # submitted once
    assert pull_job_ids(subscription[1]) == [responses[0].json()["id"]]


def test_publish_failure_answers_202_and_keeps_the_job_queued(
    tmp_path: Path, database_url: str, pubsub_emulator: str, engine: Engine
) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    with (
        start_submit(tmp_path, database_url, "jobs-nowhere", unreachable) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        response = http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH)
        assert response.status_code == 202
        job_id = response.json()["id"]
        assert http.get(f"/v1/transcriptions/{job_id}", headers=AUTH).json()["status"] == "queued"
    with transaction(engine) as conn:
        assert get_job(conn, job_id).status is JobStatus.QUEUED


def test_a_database_outage_is_503_and_not_ready(
    tmp_path: Path, pubsub_emulator: str, subscription: tuple[str, str]
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/podscribe"
    with (
        start_submit(tmp_path, down, subscription[0], pubsub_emulator) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        response = http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH)
        problem(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "5"
        problem(http.get("/readyz"), 503, "database_unavailable")
        assert http.get("/healthz").status_code == 200


def test_log_lines_carry_the_trace_and_never_the_key(
    tmp_path: Path, database_url: str, pubsub_emulator: str, subscription: tuple[str, str]
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {**AUTH, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    with (
        start_submit(
            tmp_path, database_url, subscription[0], pubsub_emulator, PODSCRIBE_LOG_LEVEL="INFO"
        ) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        assert (
            http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=headers).status_code
            == 202
        )
        assert (
            http.get(
                "/v1/transcriptions/x", headers={"Authorization": "Bearer not-a-key"}
            ).status_code
            == 401
        )
    lines = [
        json.loads(line)
        for line in running.started.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    # The start-up's /healthz probes are logged too; the test's own requests follow.
    access = [
        line
        for line in lines
        if "httpRequest" in line and line["httpRequest"]["requestUrl"] != "/healthz"
    ]
    assert [line["httpRequest"]["status"] for line in access] == [202, 401]
    assert access[0]["logging.googleapis.com/trace"] == f"projects/{TEST_PROJECT}/traces/{trace}"
    assert access[0]["caller"] and access[1]["caller"] is None
    text = running.started.log_path.read_text()
    assert API_KEY not in text and "not-a-key" not in text
