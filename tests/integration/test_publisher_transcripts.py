"""The publisher's transcript first: a feed's ``<podcast:transcript>`` finishes a job, no GPU.

Real PostgreSQL, fake-gcs-server, the real submit function (its test client), dispatch in
process with the real aiplatform client against the fake Vertex JobService (every create it
receives is a launch), and the loopback Apple stand-in serving the lookup, the feed (with
Podcasting 2.0 tags), the audio and the publisher's transcripts on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.loopback_server import Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.dispatcher import DispatchAction, DispatchOutcome, dispatch_message
from podscribe.jobs.launchers.vertex import VertexLauncher
from podscribe.messaging import JobMessage
from podscribe.podcasts.resolution import clear_lookup_cache
from podscribe.settings import Settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore
from tests.fakes.vertex import FakeVertex
from tests.integration.submit_support import API_KEY, submit_test_client

SHOW = FakeShow(collection_id=4_300_000_001, name="The Publisher Hour")
VTT = b"""WEBVTT

00:00:00.000 --> 00:00:03.000
<v Ann Lee>Welcome to the publisher hour.

00:00:03.000 --> 00:00:06.000
<v Bob>Thanks, Ann. Glad to be here.
"""
SRT = b"""1
00:00:00,000 --> 00:00:03,000
Ann Lee: Welcome to the publisher hour.

2
00:00:03,000 --> 00:00:06,000
Bob: Thanks, Ann. Glad to be here.
"""
PODCAST_JSON = json.dumps(
    {
        "version": "1.0.0",
        "segments": [
            {"speaker": "Ann Lee", "startTime": 0, "endTime": 3,
             "body": "Welcome to the publisher hour."},
            {"speaker": "Bob", "startTime": 3, "endTime": 6,
             "body": "Thanks, Ann. Glad to be here."},
        ],
    }
).encode()  # fmt: skip
CAP_BYTES = 64 * 1024
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def episode(number: int, title: str, **fields: Any) -> FakeEpisode:
    return FakeEpisode(2_000_000 + number, title, guid=f"publisher-{number}", **fields)


WITH_VTT = episode(1, "Captioned in WebVTT")
WITH_SRT = episode(2, "Captioned in SubRip, older than the lookup", in_lookup=False)
WITH_JSON = episode(3, "Captioned in Podcasting 2.0 JSON")
HUGE = episode(4, "A transcript over the cap")
REDIRECTED = episode(5, "A transcript redirected to a loopback port not allowed")
PRIVATE = episode(6, "A transcript on a private address")
BOMB = episode(7, "A transcript that is a gzip bomb")
FORCED = episode(8, "Captioned, but transcribed anyway")
EPISODES = [WITH_VTT, WITH_SRT, WITH_JSON, HUGE, REDIRECTED, PRIVATE, BOMB, FORCED]


def transcript_routes(apple: FakeApplePodcasts) -> dict[FakeEpisode, tuple[str, str]]:
    """Each episode's ``<podcast:transcript>`` (URL, type), the files served on the stand-in."""
    server = apple.server
    server.route("/t/vtt.vtt", Reply(body=VTT, content_type="text/vtt"))
    server.route("/t/srt.srt", Reply(body=SRT, content_type="application/x-subrip"))
    server.route("/t/podcast.json", Reply(body=PODCAST_JSON, content_type="application/json"))
    server.route(
        "/t/huge.vtt", Reply(body=VTT + b"NOTE " + b"x" * CAP_BYTES, content_type="text/vtt")
    )
    server.redirect("/t/redirected.vtt", "http://127.0.0.1:9/t/vtt.vtt")
    bomb = gzip.compress(b"WEBVTT\n\n" + b"\n" * (64 * 2**20))
    server.route(
        "/t/bomb.vtt",
        Reply(body=bomb, content_type="text/vtt", headers={"Content-Encoding": "gzip"}),
    )
    return {
        WITH_VTT: (server.url("/t/vtt.vtt"), "text/vtt"),
        WITH_SRT: (server.url("/t/srt.srt"), "application/x-subrip"),
        WITH_JSON: (server.url("/t/podcast.json"), "application/json"),
        HUGE: (server.url("/t/huge.vtt"), "text/vtt"),
        REDIRECTED: (server.url("/t/redirected.vtt"), "text/vtt"),
        PRIVATE: ("http://10.0.0.1/t/vtt.vtt", "text/vtt"),
        BOMB: (server.url("/t/bomb.vtt"), "text/vtt"),
        FORCED: (server.url("/t/vtt.vtt"), "text/vtt"),
    }


def feed_with_transcripts(apple: FakeApplePodcasts) -> bytes:
    """The stand-in's feed, each item carrying its transcript, the show its host."""
    feed = apple.feed_xml().decode()
    feed = feed.replace(
        "<rss ", '<rss xmlns:podcast="https://podcastindex.org/namespace/1.0" ', 1
    ).replace("<channel>", '<channel><podcast:person role="host">Ann Lee</podcast:person>', 1)
    for item, (url, kind) in transcript_routes(apple).items():
        title = f"<title>{item.title}</title>"
        tag = f'<podcast:transcript url="{url}" type="{kind}" language="en-US"/>'
        feed = feed.replace(title, title + tag, 1)
    return feed.encode()


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


@pytest.fixture(scope="module")
def apple() -> Iterator[FakeApplePodcasts]:
    with FakeApplePodcasts(SHOW, EPISODES) as stand_in:
        stand_in.feed_override = Reply(
            body=feed_with_transcripts(stand_in), content_type="application/rss+xml"
        )
        clear_lookup_cache()
        yield stand_in


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


@pytest.fixture
def dispatch_settings(
    settings: Settings,
    environment: dict[str, str],
    vertex: FakeVertex,
    apple: FakeApplePodcasts,
) -> Settings:
    configured = settings.model_copy(
        update={
            **apple.settings_overrides(),
            "env": "local",  # the SSRF escape hatch to the stand-in exists only locally
            "bucket": environment["PODSCRIBE_BUCKET"],
            "vertex_image": "podscribe/vertex-job:test",
            "vertex_api_endpoint": vertex.endpoint,
            "max_publisher_transcript_bytes": CAP_BYTES,
        }
    )
    TranscriptStore(configured).ensure_bucket()
    return configured


def submit(client: Any, apple: FakeApplePodcasts, item: FakeEpisode, **fields: Any) -> Any:
    return client.post(
        "/v1/transcriptions",
        json={"url": apple.episode_link(item), **fields},
        headers=AUTH,
    )


def dispatch(engine: Engine, settings: Settings, job_id: str) -> DispatchOutcome:
    return dispatch_message(engine, settings, VertexLauncher(settings), JobMessage(job_id))


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


@pytest.mark.parametrize(
    ("item", "served"),
    [(WITH_VTT, VTT), (WITH_SRT, SRT), (WITH_JSON, PODCAST_JSON)],
    ids=["vtt", "srt-via-page-and-feed", "podcast-json"],
)
def test_a_feeds_transcript_finishes_the_job_with_no_launch_and_every_format_is_served(
    *,
    client: Any,
    engine: Engine,
    dispatch_settings: Settings,
    vertex: FakeVertex,
    apple: FakeApplePodcasts,
    item: FakeEpisode,
    served: bytes,
) -> None:
    job_id = submit(client, apple, item).get_json()["id"]

    outcome = dispatch(engine, dispatch_settings, job_id)

    assert outcome.action is DispatchAction.SUCCEEDED
    assert vertex.creates_for(job_id, accepted_only=False) == []
    row = read(engine, job_id)
    assert (row.status, row.transcript_source, row.attempts) == (
        JobStatus.SUCCEEDED,
        "publisher",
        0,
    )
    document = client.get(f"/v1/transcriptions/{job_id}", headers=AUTH).get_json()
    transcription = document["transcription"]
    assert transcription["source"] == "publisher"
    assert transcription["provenance"]["sha256"] == hashlib.sha256(served).hexdigest()
    assert transcription["provenance"]["bytes"] == len(served)
    assert transcription["provenance"]["audio_duration_seconds"] == item.duration_seconds
    assert transcription["language"] == "en"
    assert [person["name"] for person in document["episode"]["persons"]] == ["Ann Lee"]
    for fmt, content_type in TRANSCRIPT_FORMATS.items():
        response = client.get(f"/v1/transcriptions/{job_id}/transcript?format={fmt}", headers=AUTH)
        assert response.status_code == 200, (fmt, response.get_data(as_text=True))
        assert response.mimetype == content_type
        assert "Glad to be" in response.get_data(as_text=True)
    record = client.get(f"/v1/transcriptions/{job_id}/transcript?format=json", headers=AUTH)
    body = record.get_json()
    assert body["source"] == "publisher"
    assert [segment["speaker"] for segment in body["segments"]] == ["Ann Lee", "Bob"]


@pytest.mark.parametrize(
    ("item", "path", "code"),
    [
        (HUGE, "/t/huge.vtt", "too_large"),
        (REDIRECTED, "/t/redirected.vtt", "download_refused"),
        (PRIVATE, None, "download_refused"),
        (BOMB, "/t/bomb.vtt", "too_large"),
    ],
    ids=["over-the-cap", "redirect-to-a-loopback-port", "private-address", "gzip-bomb"],
)
def test_a_refused_publisher_transcript_is_refused_like_any_fetch_and_the_job_launches(
    *,
    client: Any,
    engine: Engine,
    dispatch_settings: Settings,
    vertex: FakeVertex,
    apple: FakeApplePodcasts,
    item: FakeEpisode,
    path: str | None,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="podscribe.jobs.publisher")
    job_id = submit(client, apple, item).get_json()["id"]

    outcome = dispatch(engine, dispatch_settings, job_id)

    assert outcome.action is DispatchAction.LAUNCHED
    assert len(vertex.creates_for(job_id)) == 1
    row = read(engine, job_id)
    assert (row.status, row.transcript_source) == (JobStatus.DISPATCHED, None)
    assert row.episode is not None and row.episode["transcripts"]
    if path is not None:
        assert apple.requests_to(path), "the transcript was asked for, then refused"
    [refusal] = [r for r in caplog.records if r.getMessage().startswith("the publisher's")]
    assert refusal.__dict__["code"] == code


def test_force_transcribes_a_job_the_publisher_finished_and_a_new_one_from_the_start(
    client: Any,
    engine: Engine,
    dispatch_settings: Settings,
    vertex: FakeVertex,
    apple: FakeApplePodcasts,
) -> None:
    first = submit(client, apple, WITH_VTT).get_json()["id"]
    assert dispatch(engine, dispatch_settings, first).action is DispatchAction.SUCCEEDED

    again = submit(client, apple, WITH_VTT, force=True)

    assert again.status_code == 202
    assert again.get_json()["id"] == first
    queued = read(engine, first)
    assert (queued.status, queued.skip_publisher, queued.transcript_source) == (
        JobStatus.QUEUED, True, None,
    )  # fmt: skip
    assert dispatch(engine, dispatch_settings, first).action is DispatchAction.LAUNCHED
    assert len(vertex.creates_for(first)) == 1

    fetched_before = len(apple.requests_to("/t/vtt.vtt"))
    fresh = submit(client, apple, FORCED, force=True).get_json()["id"]
    assert dispatch(engine, dispatch_settings, fresh).action is DispatchAction.LAUNCHED
    assert len(vertex.creates_for(fresh)) == 1
    assert len(apple.requests_to("/t/vtt.vtt")) == fetched_before  # never even fetched


def test_force_on_a_queued_job_makes_dispatch_skip_the_publishers_transcript(
    client: Any,
    engine: Engine,
    dispatch_settings: Settings,
    vertex: FakeVertex,
    apple: FakeApplePodcasts,
) -> None:
    job_id = submit(client, apple, WITH_JSON, language="en").get_json()["id"]
    assert read(engine, job_id).skip_publisher is False

    again = submit(client, apple, WITH_JSON, language="en", force=True)

    assert (again.status_code, again.get_json()["id"]) == (200, job_id)
    assert read(engine, job_id).skip_publisher is True
    fetched_before = len(apple.requests_to("/t/podcast.json"))
    assert dispatch(engine, dispatch_settings, job_id).action is DispatchAction.LAUNCHED
    assert len(vertex.creates_for(job_id)) == 1
    assert len(apple.requests_to("/t/podcast.json")) == fetched_before
