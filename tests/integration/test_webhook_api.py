"""A key's webhook through the real submit function: its secret (``GET /v1/webhook-secret``)
and its delivery in the job document, pending then delivered, to a receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook, WebhookVerificationError

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe import jobs
from podscribe.api.auth import key_fingerprint
from podscribe.cli import EXIT_OK, main
from podscribe.db import transaction
from podscribe.jobs import JobStatus
from podscribe.jobs.webhooks import deliver_due, notify_finished, secret_for_key
from podscribe.settings import get_settings
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    SUBMIT_SOURCE,
    create_topic_and_subscription,
    functions_framework_process,
    limited_submit_environment,
    submit_test_client,
)
from tests.integration.webhook_support import MASTER, advance, ended_job, hook_settings


@pytest.fixture
def receiver() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_each_key_reads_its_own_secret_and_it_verifies_its_deliveries(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    receiver: FixtureServer,
) -> None:
    client = submit_test_client(monkeypatch, PODSCRIBE_WEBHOOK_SECRET=MASTER)
    keys = (API_KEY, OTHER_KEY)
    answers = {key: client.get("/v1/webhook-secret", headers=auth(key)) for key in keys}
    for answer in answers.values():
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "no-store"
    secrets = {key: answer.get_json()["secret"] for key, answer in answers.items()}
    assert secrets[API_KEY] == secret_for_key(MASTER, key_fingerprint(API_KEY))
    assert secrets[API_KEY] != secrets[OTHER_KEY]
    assert all(secret.startswith("whsec_") for secret in secrets.values())
    assert client.get("/v1/webhook-secret").status_code == 401
    # What the key learnt verifies what its callback receives, and the other key's does not.
    receiver.route("/hook", Reply(status=200))
    fingerprint = key_fingerprint(API_KEY)
    job = ended_job(engine, JobStatus.SUCCEEDED, {fingerprint: receiver.url("/hook")})
    notify_finished(engine, hook_settings(receiver), [job.id])
    [request] = receiver.requests
    Webhook(secrets[API_KEY]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secrets[OTHER_KEY]).verify(request.body, request.headers)


def test_without_a_master_secret_there_is_no_key_secret(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODSCRIBE_WEBHOOK_SECRET", raising=False)
    client = submit_test_client(monkeypatch)
    answer = client.get("/v1/webhook-secret", headers=auth())
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "webhooks_disabled"


def test_the_job_document_shows_the_callers_webhook_pending_then_delivered(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    receiver: FixtureServer,
) -> None:
    client: Any = submit_test_client(monkeypatch, PODSCRIBE_WEBHOOK_SECRET=MASTER)
    answers = iter([503, 200])
    receiver.route("/hook", lambda _request: Reply(status=next(answers)))
    settings = hook_settings(receiver, webhook_attempts=1)
    url = receiver.url("/hook")
    job = ended_job(
        engine,
        JobStatus.SUCCEEDED,
        {key_fingerprint(API_KEY): url, key_fingerprint(OTHER_KEY): None},
    )

    def webhook(key: str = API_KEY) -> Any:
        answer = client.get(f"/v1/transcriptions/{job.id}", headers=auth(key))
        assert answer.status_code == 200
        return answer.get_json()["webhook"]

    pending = webhook()
    assert (pending["url"], pending["status"], pending["attempts"]) == (url, "pending", 0)
    assert pending["next_attempt_at"] is not None
    notify_finished(engine, settings, [job.id])  # the receiver answers 503
    retrying = webhook()
    assert (retrying["status"], retrying["attempts"], retrying["last_status"]) == (
        "pending",
        1,
        503,
    )
    advance(engine, 60)
    deliver_due(engine, settings)
    delivered = webhook()
    assert (delivered["status"], delivered["attempts"], delivered["last_status"]) == (
        "delivered",
        2,
        200,
    )
    assert delivered["delivered_at"] is not None
    assert delivered["next_attempt_at"] is None
    assert webhook(OTHER_KEY) is None  # no callback registered: nothing to show


def test_a_key_asking_with_a_callback_after_the_job_ended_still_gets_its_webhook(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    receiver: FixtureServer,
) -> None:
    client: Any = submit_test_client(monkeypatch, PODSCRIBE_WEBHOOK_SECRET=MASTER)
    received: list[Any] = []

    def take(request: Any) -> Reply:
        received.append(request)
        return Reply(status=200)

    receiver.route("/late", take)
    settings = hook_settings(receiver, webhook_attempts=1)
    job = ended_job(engine, JobStatus.SUCCEEDED, {key_fingerprint(API_KEY): None}, episode_id=9)
    url = receiver.url("/late")
    # The submit check refuses loopback callbacks, so the late key registers as the API would.
    with transaction(engine) as conn:
        joined, outcome = jobs.create_or_get_job(
            conn,
            collection_id=1,
            episode_id=9,
            source_url="https://y",
            key_fingerprint=key_fingerprint(OTHER_KEY),
            callback_url=url,
        )
    assert (joined.id, outcome, joined.status) == (job.id, jobs.SubmitOutcome.EXISTING, job.status)
    pending = client.get(f"/v1/transcriptions/{job.id}", headers=auth(OTHER_KEY)).get_json()
    assert pending["webhook"]["status"] == "pending"

    deliver_due(engine, settings)  # what the next sweep does

    [delivery] = received
    secret = secret_for_key(MASTER, key_fingerprint(OTHER_KEY))
    event = Webhook(secret).verify(delivery.body, dict(delivery.headers))
    assert (event["id"], event["type"]) == (job.id, "transcription.succeeded")
    deliver_due(engine, settings)
    assert len(received) == 1


def test_a_callback_before_the_job_ends_is_shown_as_none_yet(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
) -> None:
    client: Any = submit_test_client(monkeypatch)
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=1,
            episode_id=5,
            source_url="https://x",
            key_fingerprint=key_fingerprint(API_KEY),
            callback_url="https://hooks.example/h",
        )
    document = client.get(f"/v1/transcriptions/{job.id}", headers=auth()).get_json()
    assert document["webhook"] == {
        "url": "https://hooks.example/h",
        "status": "none",
        "attempts": 0,
        "last_status": None,
        "next_attempt_at": None,
        "delivered_at": None,
    }


def test_the_cli_prints_the_keys_secret(  # noqa: PLR0917 - pytest fixtures
    tmp_path: Path,
    database_url: str,
    pubsub_emulator: str,
    gcs_emulator: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, _ = create_topic_and_subscription(TEST_PROJECT)
    env = limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_emulator,
        storage_url=gcs_emulator,
    )
    env["PODSCRIBE_WEBHOOK_SECRET"] = MASTER
    with functions_framework_process(SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log") as fn:
        monkeypatch.setenv("PODSCRIBE_API_URL", fn.url)
        monkeypatch.setenv("PODSCRIBE_API_KEY", OTHER_KEY)
        get_settings.cache_clear()
        try:
            assert main(["webhook-secret"]) == EXIT_OK
        finally:
            get_settings.cache_clear()
    assert capsys.readouterr().out.strip() == secret_for_key(MASTER, key_fingerprint(OTHER_KEY))
