"""What a launch costs and who may spend it: resolution before launch, and the launch cap.

Real PostgreSQL, the real aiplatform client against the fake Vertex JobService (every create
it receives is recorded: a launch that happened), and the loopback Apple stand-in answering
the lookups, pages, feed and audio dispatch now fetches before it launches anything.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.loopback_server import Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import CapacityError, FetchFailedError
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.dispatcher import DispatchAction, DispatchOutcome, dispatch_message
from podscribe.jobs.launchers.vertex import VertexLauncher
from podscribe.messaging import JobMessage
from podscribe.podcasts.resolution import clear_lookup_cache
from podscribe.settings import Settings
from tests.fakes.jobs import mark_resolved
from tests.fakes.vertex import FakeVertex

SHOW = FakeShow(collection_id=4_200_000_001, name="The Budget Hour", artist="podscribe tests")
GOOD = FakeEpisode(1_000_001, "A real episode")
HTML = FakeEpisode(
    1_000_002,
    "An enclosure that is a web page",
    audio=b"<!doctype html><html><body>Subscribe!</body></html>",
    audio_type="text/html",
)
METADATA = FakeEpisode(
    1_000_003,
    "An enclosure aimed at the metadata server",
    audio_url="http://169.254.169.254/computeMetadata/v1/",
)
MARATHON = FakeEpisode(1_000_004, "Seven hours", duration_seconds=7 * 3600)
KEY = "fingerprint-of-one-key"


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


@pytest.fixture(scope="module")
def apple() -> Iterator[FakeApplePodcasts]:
    with FakeApplePodcasts(SHOW, [GOOD, HTML, METADATA, MARATHON]) as stand_in:
        yield stand_in


@pytest.fixture
def dispatch_settings(settings: Settings, vertex: FakeVertex, apple: FakeApplePodcasts) -> Settings:
    return settings.model_copy(
        update={
            **apple.settings_overrides(),
            "env": "local",  # the SSRF escape hatch to the stand-in exists only locally
            "vertex_image": "podscribe/vertex-job:test",
            "vertex_api_endpoint": vertex.endpoint,
            "max_concurrent_jobs": 5,
        }
    )


def submit(engine: Engine, collection_id: int, episode_id: int) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=collection_id,
            episode_id=episode_id,
            source_url=f"https://podcasts.apple.com/us/podcast/x/id{collection_id}?i={episode_id}",
            key_fingerprint=KEY,
            transcript_model="tiny.en",
            transcript_language="en",
        )
    return job


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


def test_twenty_random_episode_links_make_no_launch(
    engine: Engine, dispatch_settings: Settings, vertex: FakeVertex, apple: FakeApplePodcasts
) -> None:
    draw = random.Random(16)
    links = [(SHOW.collection_id, draw.randrange(10**9, 10**10)) for _ in range(10)]
    links += [(draw.randrange(10**8, 10**9), draw.randrange(10**9, 10**10)) for _ in range(10)]
    launcher = VertexLauncher(dispatch_settings)
    lookups_before = len(apple.requests_to("/lookup"))

    outcomes = [
        dispatch_message(engine, dispatch_settings, launcher, JobMessage(submit(engine, *ids).id))
        for ids in links
    ]

    assert [outcome.action for outcome in outcomes] == [DispatchAction.FAILED] * 20
    for outcome in outcomes:
        assert vertex.creates_for(outcome.job_id, accepted_only=False) == []
        row = read(engine, outcome.job_id)
        assert (row.status, row.error_code, row.attempts) == (
            JobStatus.FAILED,
            "episode_not_found",
            0,
        )
    # Each was resolved on the CPU (the unknown shows each looked up, the known show's lookup
    # cached), none launched on a GPU.
    looked_up = {r.param("id") for r in apple.requests_to("/lookup")[lookups_before:]}
    assert {str(show) for show, _ in links} <= looked_up | {str(SHOW.collection_id)}
    assert len(looked_up) >= 10


@pytest.mark.parametrize(
    ("episode", "code"),
    [(HTML, "not_audio"), (METADATA, "download_refused"), (MARATHON, "too_long")],
    ids=["html-enclosure", "metadata-address", "seven-hours"],
)
def test_an_episode_that_cannot_be_transcribed_fails_in_dispatch_without_a_launch(
    engine: Engine,
    dispatch_settings: Settings,
    vertex: FakeVertex,
    episode: FakeEpisode,
    code: str,
) -> None:
    job = submit(engine, SHOW.collection_id, episode.episode_id)

    outcome = dispatch_message(
        engine, dispatch_settings, VertexLauncher(dispatch_settings), JobMessage(job.id)
    )

    assert outcome.action is DispatchAction.FAILED
    assert vertex.creates_for(job.id, accepted_only=False) == []
    failed = read(engine, job.id)
    assert (failed.status, failed.error_code, failed.attempts) == (JobStatus.FAILED, code, 0)


def test_a_real_episode_is_resolved_recorded_and_launched_with_it(
    engine: Engine, dispatch_settings: Settings, vertex: FakeVertex, apple: FakeApplePodcasts
) -> None:
    job = submit(engine, SHOW.collection_id, GOOD.episode_id)

    outcome = dispatch_message(
        engine, dispatch_settings, VertexLauncher(dispatch_settings), JobMessage(job.id)
    )

    assert outcome.action is DispatchAction.LAUNCHED
    [create] = vertex.creates_for(job.id)
    launched = read(engine, job.id)
    assert launched.status is JobStatus.DISPATCHED
    assert launched.episode is not None
    assert launched.episode["audio_url"] == apple.audio_url(GOOD)
    assert launched.episode["title"] == GOOD.title
    # The job the GPU runs starts from this row: its only argument is the job id.
    assert list(create.custom_job.job_spec.worker_pool_specs[0].container_spec.args) == [
        "--job-id",
        job.id,
    ]


def test_a_lookup_outage_spends_no_attempt_and_records_nothing(
    engine: Engine, dispatch_settings: Settings, vertex: FakeVertex, apple: FakeApplePodcasts
) -> None:
    job = submit(engine, SHOW.collection_id, GOOD.episode_id + 77)
    clear_lookup_cache()
    apple.lookup_failures.extend([Reply(status=503)] * 20)
    try:
        with pytest.raises(FetchFailedError):
            dispatch_message(
                engine, dispatch_settings, VertexLauncher(dispatch_settings), JobMessage(job.id)
            )
    finally:
        apple.lookup_failures.clear()
    row = read(engine, job.id)
    assert (row.status, row.attempts, row.episode) == (JobStatus.QUEUED, 0, None)
    assert vertex.creates_for(job.id, accepted_only=False) == []


def test_the_launch_cap_holds_under_50_parallel_wakeups(
    engine: Engine, dispatch_settings: Settings, vertex: FakeVertex
) -> None:
    cap = dispatch_settings.max_concurrent_jobs
    collection = 4_200_000_000 + uuid.uuid4().int % 10**6
    queued = []
    for episode_id in range(50):
        with transaction(engine) as conn:
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=collection,
                episode_id=episode_id + 1,
                source_url=f"https://podcasts.apple.com/us/podcast/x/id{collection}?i={episode_id}",
                key_fingerprint=KEY,
            )
            queued.append(mark_resolved(conn, job))
    launcher = VertexLauncher(dispatch_settings)
    start = threading.Barrier(50)

    def wake(job: Job) -> DispatchOutcome | CapacityError:
        start.wait()
        try:
            return dispatch_message(engine, dispatch_settings, launcher, JobMessage(job.id))
        except CapacityError as refused:
            return refused

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(wake, queued))

    launched = [r for r in results if isinstance(r, DispatchOutcome)]
    refused = [r for r in results if isinstance(r, CapacityError)]
    assert [r.action for r in launched] == [DispatchAction.LAUNCHED] * cap
    assert len(refused) == 50 - cap
    assert sum(len(vertex.creates_for(job.id)) for job in queued) == cap
    with transaction(engine) as conn:
        assert jobs.count_active(conn) == cap
        # Waiting for a slot spent no attempt.
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM jobs WHERE collection_id = :c AND status = 'queued'"
                " AND attempts = 0"
            ),
            {"c": collection},
        ).scalar_one()
    assert waiting == 50 - cap
