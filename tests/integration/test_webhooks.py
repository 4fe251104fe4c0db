"""Webhooks delivered to loopback receivers through the SSRF guard: signed per key (Standard
Webhooks, checked with the ``standardwebhooks`` package), logged by host, never redirected."""

from __future__ import annotations

import base64
import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook, WebhookVerificationError

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import public_message
from podscribe.jobs import JobStatus
from podscribe.jobs.outbox import DeliveryStatus
from podscribe.jobs.webhooks import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    notify_finished,
    secret_for_key,
    verify,
)
from podscribe.log import CloudLoggingFormatter
from podscribe.settings import load_settings
from tests.fakes.cloudsql import authorized_user_file
from tests.integration.webhook_support import MASTER, deliveries, ended_job, hook_settings


@pytest.fixture
def receiver() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


def test_a_finished_job_is_posted_signed_for_its_key(
    engine: Engine, receiver: FixtureServer
) -> None:
    receiver.route("/hook", Reply(status=204, content_type=None))
    settings = hook_settings(receiver, public_base_url="https://api.example")
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")})
    notify_finished(engine, settings, [job.id])
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.last_status) == (DeliveryStatus.DELIVERED, 204)
    assert request.headers[ID_HEADER] == delivery.id
    secret = secret_for_key(MASTER, "key-a")
    # A third party's verifier (Standard Webhooks' own package) and ours agree.
    body = Webhook(secret).verify(request.body, request.headers)
    assert verify(request.body, request.headers, secret)
    assert not verify(request.body + b" ", request.headers, secret)
    assert body["type"] == "transcription.succeeded"
    assert body["id"] == job.id
    assert body["transcripts"]["srt"] == (
        f"https://api.example/v1/transcriptions/{job.id}/transcript?format=srt"
    )


def test_each_key_is_signed_with_its_own_secret(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/a", Reply(status=200))
    receiver.route("/b", Reply(status=200))
    callbacks = {"key-a": receiver.url("/a"), "key-b": receiver.url("/b")}
    job = ended_job(engine, JobStatus.SUCCEEDED, callbacks)
    notify_finished(engine, hook_settings(receiver), [job.id])
    by_path = {request.path: request for request in receiver.requests}
    assert set(by_path) == {"/a", "/b"}
    own = {"/a": "key-a", "/b": "key-b"}
    for path, request in by_path.items():
        other = "key-b" if own[path] == "key-a" else "key-a"
        Webhook(secret_for_key(MASTER, own[path])).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret_for_key(MASTER, other)).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):  # nor with the master itself
            Webhook(base64.b64encode(MASTER.encode()).decode()).verify(
                request.body, request.headers
            )
    assert by_path["/a"].headers[ID_HEADER] != by_path["/b"].headers[ID_HEADER]


def test_a_delivery_replayed_to_another_receiver_fails_there(engine: Engine) -> None:
    with FixtureServer() as receiver_a, FixtureServer() as receiver_b:
        receiver_a.route("/hook", Reply(status=200))
        receiver_b.route("/hook", Reply(status=200))
        settings = hook_settings(receiver_a, receiver_b)
        job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver_a.url("/hook")})
        notify_finished(engine, settings, [job.id])
        [captured] = receiver_a.requests
        Webhook(secret_for_key(MASTER, "key-a")).verify(captured.body, captured.headers)
        # Receiver A (or anyone who saw its traffic) sends the event on to B, headers and all.
        replay = urllib.request.Request(
            receiver_b.url("/hook"),
            data=captured.body,
            headers={
                name: captured.headers[name]
                for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, "Content-Type")
            },
            method="POST",
        )
        with urllib.request.urlopen(replay, timeout=5) as answer:
            assert answer.status == 200
        [replayed] = receiver_b.requests
    assert replayed.body == captured.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_for_key(MASTER, "key-b")).verify(replayed.body, replayed.headers)
    assert not verify(replayed.body, replayed.headers, secret_for_key(MASTER, "key-b"))


def test_a_failed_job_carries_its_error(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/hook", Reply(status=200, body=b"ok"))
    job = ended_job(engine, JobStatus.FAILED, {"k": receiver.url("/hook")})
    notify_finished(engine, hook_settings(receiver), [job.id])
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
        job = ended_job(
            engine,
            JobStatus.FAILED,
            {"k": receiver.url("/hook")},
            code="download_refused",
            message=refusal,
        )
    notify_finished(engine, hook_settings(receiver), [job.id])
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
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": delivered, "key-b": refused})
    formatter = CloudLoggingFormatter("test")
    with caplog.at_level(logging.INFO, logger="podscribe.jobs.webhooks"):
        notify_finished(engine, hook_settings(receiver, webhook_attempts=1), [job.id])
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    # The URL with credentials in it is the guard's to refuse: given up at once.
    assert {line["message"] for line in lines} == {
        "webhook delivered",
        "webhook not delivered",
        "webhook abandoned",
    }
    text = json.dumps(lines)
    for secret in ("s3cr3tpath", "qs-secret", "pw-secret", "/hooks", "sig=abc"):
        assert secret not in text
    assert {line["host"] for line in lines} == {f"http://{receiver.host_port}"}
    # Nor does the outbox keep the URL's text in its error: our code.
    gone = next(d for d in deliveries(engine, job.id) if d.key_fingerprint == "key-b")
    assert (gone.status, gone.last_error) == (DeliveryStatus.ABANDONED, "download_refused")


def test_any_other_answer_than_2xx_is_tried_again_later(
    engine: Engine, receiver: FixtureServer
) -> None:
    receiver.route("/gone", Reply(status=404))
    job = ended_job(engine, JobStatus.SUCCEEDED, {"k": receiver.url("/gone")})
    notify_finished(engine, hook_settings(receiver, webhook_attempts=3), [job.id])
    # A 4xx is not retried within the round (it is no blip), but the sweep asks again.
    assert len(receiver.requests) == 1
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.last_status, delivery.last_error) == (
        DeliveryStatus.PENDING,
        404,
        "upstream_status",
    )
    assert delivery.next_attempt_at > delivery.created_at


def test_server_errors_are_retried_in_the_round_then_delivered(
    engine: Engine, receiver: FixtureServer
) -> None:
    answers = iter([503, 500, 200])
    receiver.route("/hook", lambda _request: Reply(status=next(answers)))
    job = ended_job(engine, JobStatus.SUCCEEDED, {"k": receiver.url("/hook")})
    notify_finished(engine, hook_settings(receiver, webhook_attempts=3), [job.id])
    assert len(receiver.requests) == 3
    # One delivery, one id on every try; each try signed at its own time.
    assert len({request.headers[ID_HEADER] for request in receiver.requests}) == 1
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_redirects_are_not_followed(engine: Engine, receiver: FixtureServer) -> None:
    receiver.redirect("/hook", receiver.url("/elsewhere"), status=307)
    job = ended_job(engine, JobStatus.SUCCEEDED, {"k": receiver.url("/hook")})
    notify_finished(engine, hook_settings(receiver), [job.id])
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "upstream_status")
    assert receiver.paths_requested() == ["/hook"]


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://10.0.0.7/hook", "http://[::1]:80/x"]
)
def test_internal_addresses_are_refused_without_a_request(
    engine: Engine, receiver: FixtureServer, url: str
) -> None:
    job = ended_job(engine, JobStatus.SUCCEEDED, {"k": url})
    notify_finished(engine, hook_settings(receiver), [job.id])
    [delivery] = deliveries(engine, job.id)
    # Given up at once: asking again would only ask the guard again.
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.ABANDONED, "download_refused")
    assert receiver.requests == []


def test_nothing_is_sent_for_a_running_job(engine: Engine, receiver: FixtureServer) -> None:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=1,
            episode_id=3,
            source_url="https://x",
            key_fingerprint="k",
            callback_url=receiver.url("/hook"),
        )
    notify_finished(engine, hook_settings(receiver), [job.id])
    assert deliveries(engine) == []
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
        # The sweep fails the job: its deliveries are written in that same transaction.
        assert jobs.sweep(conn, max_attempts=1, requeue_after_seconds=60).failed == [job.id]
    notify_finished(engine, hook_settings(receiver), [job.id, job.id])
    assert sorted(receiver.paths_requested()) == ["/a", "/b"]
    bodies = [json.loads(request.body) for request in receiver.requests]
    assert {body["error"]["code"] for body in bodies} == {"attempts_exhausted"}
    assert {d.key_fingerprint for d in deliveries(engine, job.id)} == {"key-a", "key-b"}


def test_without_a_master_secret_deliveries_are_unsigned(
    engine: Engine, receiver: FixtureServer
) -> None:
    receiver.route("/hook", Reply(status=200))
    job = ended_job(engine, JobStatus.SUCCEEDED, {"k": receiver.url("/hook")})
    notify_finished(engine, hook_settings(receiver, webhook_secret=None), [job.id])
    [request] = receiver.requests
    assert SIGNATURE_HEADER not in {name.lower() for name in request.headers}
    assert request.headers[ID_HEADER] == deliveries(engine, job.id)[0].id


def test_the_master_secret_can_come_from_secret_manager(
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
        job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")})
        notify_finished(engine, settings, [job.id])
        [access] = secret_manager.requests
    headers = {name.lower(): value for name, value in access.headers.items()}
    assert headers["authorization"] == "Bearer sm-test-token"
    [request] = receiver.requests
    Webhook(secret_for_key("from-secret-manager", "key-a")).verify(request.body, request.headers)


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
        job = ended_job(engine, JobStatus.SUCCEEDED, {"k": receiver.url("/hook")})
        notify_finished(engine, settings, [job.id])
    assert receiver.requests == []
    # Kept for the sweep: once the secret can be read, the delivery goes out signed.
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.last_error) == (
        DeliveryStatus.PENDING,
        "webhook_secret_unavailable",
    )
