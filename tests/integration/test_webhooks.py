"""Webhooks delivered to a loopback receiver through the SSRF guard, signed, retried."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import public_message
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.webhooks import SIGNATURE_HEADER, notify, notify_finished, verify
from podscribe.log import CloudLoggingFormatter
from podscribe.settings import Settings, load_settings
from tests.fakes.cloudsql import authorized_user_file

SECRET = "whsec-test"


@pytest.fixture
def receiver() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


def hook_settings(receiver: FixtureServer, **overrides: object) -> Settings:
    return load_settings(
        env="local",
        ssrf_allow=[receiver.host_port],
        webhook_secret=SECRET,
        idle_timeout_seconds=5,
        **overrides,
    )


def finished_job(
    engine: Engine,
    status: JobStatus,
    *,
    code: str = "not_audio",
    message: str = "HTML",
) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=1,
            episode_id=2,
            source_url="https://x",
            key_fingerprint="k",
            callback_url="http://hooks.example/ignored",
        )
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=60)
        if status is JobStatus.SUCCEEDED:
            return jobs.succeed(conn, job.id, transcript_objects={"txt": "t"})
        return jobs.fail(conn, job.id, JobStatus.RUNNING, code=code, message=message)


def test_a_finished_job_is_posted_signed(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/hook", Reply(status=204, content_type=None))
    settings = hook_settings(receiver, public_base_url="https://api.example")
    job = finished_job(engine, JobStatus.SUCCEEDED)
    deliveries = notify(job, [receiver.url("/hook")], settings)
    assert [(d.delivered, d.status) for d in deliveries] == [(True, 204)]
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert verify(request.body, request.headers[SIGNATURE_HEADER], SECRET)
    assert not verify(request.body + b" ", request.headers[SIGNATURE_HEADER], SECRET)
    body = json.loads(request.body)
    assert body["type"] == "transcription.succeeded"
    assert body["id"] == job.id
    assert body["transcripts"]["srt"] == (
        f"https://api.example/v1/transcriptions/{job.id}/transcript?format=srt"
    )


def test_a_failed_job_carries_its_error(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/hook", Reply(status=200, body=b"ok"))
    job = finished_job(engine, JobStatus.FAILED)
    notify(job, [receiver.url("/hook")], hook_settings(receiver))
    body = json.loads(receiver.requests[0].body)
    assert body["type"] == "transcription.failed"
    assert body["error"] == {"code": "not_audio", "message": public_message("not_audio")}


def test_a_guard_refusal_reaches_the_receiver_as_its_code_only(
    engine: Engine, receiver: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    # What a hostile feed learns from the webhook must not map the network behind the job.
    refusal = "refused to fetch http://db.internal:5432/x: db.internal resolves to 10.9.8.7"
    receiver.route("/hook", Reply(status=200, body=b"ok"))
    with caplog.at_level(logging.WARNING, logger="podscribe.jobs.transitions"):
        job = finished_job(engine, JobStatus.FAILED, code="download_refused", message=refusal)
    notify(job, [receiver.url("/hook")], hook_settings(receiver))
    raw = receiver.requests[0].body.decode()
    assert json.loads(raw)["error"] == {
        "code": "download_refused",
        "message": public_message("download_refused"),
    }
    assert "10.9.8.7" not in raw and "internal" not in raw
    [logged] = [record for record in caplog.records if record.getMessage() == "job failed"]
    assert logged.__dict__["detail"] == refusal  # the detail is ours, in the logs


def test_callback_urls_are_logged_by_host_only(
    engine: Engine, receiver: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.route("/hooks/T0/B0/s3cr3tpath", Reply(status=200))
    receiver.route("/hooks/gone", Reply(status=404))
    delivered = receiver.url("/hooks/T0/B0/s3cr3tpath") + "?token=qs-secret"
    refused = receiver.url("/hooks/gone").replace("://", "://user:pw-secret@") + "?sig=abc"
    job = finished_job(engine, JobStatus.SUCCEEDED)
    formatter = CloudLoggingFormatter("test")
    with caplog.at_level(logging.INFO, logger="podscribe.jobs.webhooks"):
        notify(job, [delivered, refused], hook_settings(receiver, webhook_attempts=1))
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    assert {line["message"] for line in lines} == {"webhook delivered", "webhook not delivered"}
    text = json.dumps(lines)
    for secret in ("s3cr3tpath", "qs-secret", "pw-secret", "/hooks", "sig=abc"):
        assert secret not in text
    assert {line["host"] for line in lines} == {f"http://{receiver.host_port}"}


def test_server_errors_are_retried_then_delivered(engine: Engine, receiver: FixtureServer) -> None:
    answers = iter([503, 500, 200])
    receiver.route("/hook", lambda _request: Reply(status=next(answers)))
    job = finished_job(engine, JobStatus.SUCCEEDED)
    [delivery] = notify(job, [receiver.url("/hook")], hook_settings(receiver, webhook_attempts=3))
    assert delivery.delivered
    assert len(receiver.requests) == 3


def test_redirects_are_not_followed(engine: Engine, receiver: FixtureServer) -> None:
    receiver.redirect("/hook", receiver.url("/elsewhere"), status=307)
    job = finished_job(engine, JobStatus.SUCCEEDED)
    [delivery] = notify(job, [receiver.url("/hook")], hook_settings(receiver))
    assert not delivery.delivered
    assert delivery.error == "upstream_status"
    assert receiver.paths_requested() == ["/hook"]


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://10.0.0.7/hook", "http://[::1]:80/x"]
)
def test_internal_addresses_are_refused_without_a_request(
    engine: Engine, receiver: FixtureServer, url: str
) -> None:
    job = finished_job(engine, JobStatus.SUCCEEDED)
    [delivery] = notify(job, [url], hook_settings(receiver))
    assert (delivery.delivered, delivery.error) == (False, "download_refused")


def test_nothing_is_sent_for_a_running_job(engine: Engine, receiver: FixtureServer) -> None:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn, collection_id=1, episode_id=3, source_url="https://x", key_fingerprint="k"
        )
    assert notify(job, [receiver.url("/hook")], hook_settings(receiver)) == []
    assert receiver.requests == []


def test_notify_finished_posts_to_every_registered_callback(
    engine: Engine, receiver: FixtureServer
) -> None:
    receiver.route("/a", Reply(status=200))
    receiver.route("/b", Reply(status=200))
    with transaction(engine) as conn:
        for key, path in (("key-a", "/a"), ("key-b", "/b"), ("key-c", None)):
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=9,
                episode_id=9,
                source_url="https://x",
                key_fingerprint=key,
                callback_url=receiver.url(path) if path else None,
            )
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=0, max_attempts=1)
    with transaction(engine) as conn:
        assert jobs.sweep(conn, max_attempts=1, requeue_after_seconds=60).failed == [job.id]
    notify_finished(engine, hook_settings(receiver), [job.id, job.id])
    assert sorted(receiver.paths_requested()) == ["/a", "/b"]
    bodies = [json.loads(request.body) for request in receiver.requests]
    assert {body["error"]["code"] for body in bodies} == {"attempts_exhausted"}


def test_the_secret_can_come_from_secret_manager(
    engine: Engine, receiver: FixtureServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = "projects/podscribe-prod/secrets/webhook-secret/versions/latest"
    payload = base64.b64encode(b"from-secret-manager").decode()
    with FixtureServer() as secret_manager:
        secret_manager.route(
            f"/v1/{version}:access",
            Reply(
                body=json.dumps({"name": version, "payload": {"data": payload}}).encode(),
                content_type="application/json",
            ),
        )
        receiver.route("/hook", Reply(status=204, content_type=None))
        # Google's own variable: the credentials google.auth finds (a still-valid token).
        credentials = authorized_user_file(tmp_path, "sm-test-token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
        settings = load_settings(
            env="local",
            ssrf_allow=[receiver.host_port],
            webhook_secret_version=version,
            secret_manager_endpoint=secret_manager.base_url,
        )
        job = finished_job(engine, JobStatus.SUCCEEDED)
        [delivery] = notify(job, [receiver.url("/hook")], settings)
        [access] = secret_manager.requests
    assert delivery.delivered
    headers = {name.lower(): value for name, value in access.headers.items()}
    assert headers["authorization"] == "Bearer sm-test-token"
    [request] = receiver.requests
    assert verify(request.body, request.headers[SIGNATURE_HEADER], "from-secret-manager")


def test_an_unreadable_secret_sends_nothing_unsigned(
    engine: Engine, receiver: FixtureServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FixtureServer() as secret_manager:  # knows no secret: 404
        monkeypatch.setenv(
            "GOOGLE_APPLICATION_CREDENTIALS", str(authorized_user_file(tmp_path, "t"))
        )
        settings = load_settings(
            env="local",
            ssrf_allow=[receiver.host_port],
            webhook_secret_version="projects/p/secrets/missing/versions/1",
            secret_manager_endpoint=secret_manager.base_url,
        )
        job = finished_job(engine, JobStatus.SUCCEEDED)
        [delivery] = notify(job, [receiver.url("/hook")], settings)
    assert (delivery.delivered, delivery.error) == (False, "webhook_secret_unavailable")
    assert receiver.requests == []
