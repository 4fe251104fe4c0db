"""Load: 200 distinct episodes and 2,000 duplicate submissions from 50 concurrent clients.

What is broken is capacity: 50 callers at once, each on a connection of its own, send 2,200
``POST /v1/transcriptions`` in a seeded shuffle: every one of 200 episodes eleven times (in
three spellings of its link), so duplicates race their originals at the database. The design
promises that a submission is idempotent per episode (one job, one ``202``, then ``200``
with the same id) and that each job is launched once, however many wake-ups arrive.

The GCP shape on loopback: submit and dispatch are real ``functions-framework`` processes
(the command line Cloud Functions runs), the Pub/Sub emulator pushes each wake-up to
dispatch through a push subscription (Eventarc's part in GCP), dispatch resolves each episode
against the loopback Apple stand-in (lookup, feed, audio probe) and launches it with its real
Vertex launcher: the real aiplatform client sending ``CreateCustomJob`` to the fake JobService
(:mod:`tests.fakes.vertex`), whose jobs stay pending, so no audio is downloaded and nothing is
transcribed. The processes are built here rather than by ``python -m local_emulators up``
because the local profile's wiring forces ``PODSCRIBE_LAUNCHER=local`` (a real job process
per launch, far too slow for 200 on two cores); everything else is as the profile runs it.
Rate limits and budgets are set out of the way: this drill measures capacity, not limits.

"One launch each" is counted twice, independently: the CreateCustomJob requests the fake
received (exactly one per job id, none refused) and each job's moves to ``dispatched`` in
its event history. Latency and throughput are recorded, never asserted (they are the CPU's).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.cloud import pubsub_v1
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.processes import stop_group
from podscribe.db import create_db_engine, transaction
from podscribe.jobs.tables import job_events_table, jobs_table
from podscribe.settings import load_settings
from tests.conftest import TEST_PROJECT
from tests.drills.figures import Recorder
from tests.drills.load_support import Answer, Call, latency_figures, run_requests
from tests.drills.profile_support import group_rss, wait_for
from tests.fakes.vertex import FakeVertex
from tests.integration.dispatch_support import create_push_subscription, start_function
from tests.integration.submit_support import (
    API_KEY,
    SUBMIT_SOURCE,
    RunningFunction,
    functions_framework_process,
    limited_submit_environment,
)
from tests.services import throwaway_database

pytestmark = pytest.mark.timeout(900)

SHOW = FakeShow(collection_id=4_400_000_001, name="The Capacity Hour", artist="podscribe drills")
EPISODES = [FakeEpisode(3_000_000 + n, f"Episode {n}", guid=f"capacity-{n}") for n in range(200)]
COPIES = 11  # each episode submitted eleven times: one original, ten duplicates
CLIENTS = 50
SEED = 21
MB = 1024 * 1024
PATH = "/v1/transcriptions"


@dataclass(frozen=True)
class Stack:
    """What the drill started: submit's URL and process, the fake Vertex, the database."""

    submit: RunningFunction
    vertex: FakeVertex
    engine: Engine


@pytest.fixture
def stack(pubsub_emulator: str, migrated_template: str, tmp_path: Path) -> Iterator[Stack]:
    topic = f"jobs-{uuid.uuid4().hex[:8]}"
    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=publisher.topic_path(TEST_PROJECT, topic))
    with (
        throwaway_database(template=migrated_template) as url,
        FakeVertex() as vertex,
        FakeApplePodcasts(SHOW, EPISODES, record_requests=False) as apple,
    ):
        dispatch_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PODSCRIBE_", "WHISPER_"))
        } | {
            # local: the SSRF escape hatch to the loopback stand-in exists only there.
            "PODSCRIBE_ENV": "local",
            "PODSCRIBE_DATABASE_URL": url,
            "PODSCRIBE_PROJECT_ID": TEST_PROJECT,
            "PODSCRIBE_PUBSUB_TOPIC": topic,
            "PODSCRIBE_LAUNCHER": "vertex",
            "PODSCRIBE_VERTEX_IMAGE": "podscribe/vertex-job:drill",
            "PODSCRIBE_VERTEX_API_ENDPOINT": vertex.endpoint,
            "PODSCRIBE_VERTEX_SERVICE_ACCOUNT": "vertex-job@podscribe-test.iam.gserviceaccount.com",
            "PODSCRIBE_BUCKET": "podscribe-test-transcripts",
            "PODSCRIBE_ITUNES_API_BASE": apple.server.base_url,
            "PODSCRIBE_APPLE_WEB_BASE": apple.server.base_url,
            "PODSCRIBE_SSRF_ALLOW": apple.server.host_port,
            "PODSCRIBE_MAX_CONCURRENT_JOBS": "1000",  # the fake's jobs never end
            "PODSCRIBE_REQUEUE_AFTER_SECONDS": "600",
            "PODSCRIBE_LOG_LEVEL": "WARNING",
            "PUBSUB_EMULATOR_HOST": pubsub_emulator,
        }
        dispatch, dispatch_port = start_function("dispatch", "dispatch", dispatch_env, tmp_path)
        try:
            create_push_subscription(
                pubsub_v1.SubscriberClient(),
                TEST_PROJECT,
                topic,
                f"{topic}-dispatch",
                dispatch_port,
            )
            submit_env = limited_submit_environment(
                database_url=url,
                project=TEST_PROJECT,
                topic=topic,
                pubsub_host=pubsub_emulator,
                rate_limit="1000000",
                # A wake-up published under load may wait on the emulator's CPU.
                PODSCRIBE_PUBLISH_TIMEOUT_SECONDS="15",
            )
            engine = create_db_engine(load_settings(database_url=url, env="test"))
            with functions_framework_process(
                SUBMIT_SOURCE, "submit", submit_env, tmp_path / "submit.log"
            ) as submit:
                try:
                    yield Stack(submit, vertex, engine)
                finally:
                    engine.dispose()
        finally:
            stop_group(dispatch.pid)


def links(episode: FakeEpisode) -> list[str]:
    """Three spellings of one episode's link (all the US storefront the show is sold in)."""
    show, item = SHOW.collection_id, episode.episode_id
    return [
        f"https://podcasts.apple.com/us/podcast/the-capacity-hour/id{show}?i={item}",
        f"https://podcasts.apple.com/us/podcast/another-slug/id{show}?uo=4&i={item}",
        f"podcasts.apple.com/podcast/id{show}?i={item}",
    ]


def submissions() -> list[Call]:
    """Every episode ``COPIES`` times, shuffled with a fixed seed."""
    calls = [
        Call(
            "POST", "/v1/transcriptions", {"url": links(episode)[copy % 3]}, str(episode.episode_id)
        )
        for episode in EPISODES
        for copy in range(COPIES)
    ]
    random.Random(SEED).shuffle(calls)
    return calls


def job_statuses(engine: Engine) -> dict[str, str]:
    with transaction(engine) as conn:
        rows = conn.execute(sa.select(jobs_table.c.id, jobs_table.c.status))
        return {str(job_id): str(status) for job_id, status in rows}


def dispatched_events(engine: Engine) -> dict[str, int]:
    """Each job's moves to ``dispatched`` (a hand-over to a worker)."""
    query = (
        sa.select(job_events_table.c.job_id, sa.func.count())
        .where(job_events_table.c.to_status == "dispatched")
        .group_by(job_events_table.c.job_id)
    )
    with transaction(engine) as conn:
        return {str(job_id): int(count) for job_id, count in conn.execute(query)}


def accepted_creates(vertex: FakeVertex) -> Counter[str]:
    return Counter(c.job_id or "" for c in list(vertex.creates) if c.refused is None)


def test_two_hundred_episodes_and_two_thousand_duplicates_make_two_hundred_launches(
    stack: Stack, figures: Recorder
) -> None:
    row = figures(
        "Load: 2,200 submissions from 50 clients",
        f"{len(EPISODES)} distinct episodes and {len(EPISODES) * (COPIES - 1):,} duplicate "
        f"submissions (3 spellings, seeded shuffle) from {CLIENTS} concurrent clients against "
        "submit and dispatch (functions-framework, Pub/Sub push, fake Vertex)",
        bound="zero 5xx and transport errors; per episode one 202 then 200s with its id; "
        f"exactly {len(EPISODES)} jobs, each one CreateCustomJob and one dispatched event",
    )
    submit_pid = stack.submit.started.pid
    rss_before = group_rss(submit_pid)
    calls = submissions()
    began = time.monotonic()
    answers = run_requests(
        stack.submit.url,
        calls,
        clients=CLIENTS,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    elapsed = time.monotonic() - began
    rss_after_load = group_rss(submit_pid)

    def all_launched() -> bool:
        return len(accepted_creates(stack.vertex)) >= len(EPISODES) and all(
            status == "dispatched" for status in job_statuses(stack.engine).values()
        )

    # On a timeout the figures below say how many were; the assertions fail on them.
    with contextlib.suppress(AssertionError):
        wait_for("every job launched", all_launched, timeout=300, interval=1.0)
    launched_after = time.monotonic() - began
    time.sleep(5)  # a redelivered wake-up arriving late would launch again now

    by_episode: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_episode[answer.call.tag].append(answer)
    codes = Counter(answer.status for answer in answers)
    statuses, dispatched = job_statuses(stack.engine), dispatched_events(stack.engine)
    creates = accepted_creates(stack.vertex)
    refused = [c for c in list(stack.vertex.creates) if c.refused is not None]
    row.observed.update(
        {
            "requests": len(answers),
            "clients": CLIENTS,
            "202": codes[202],
            "200": codes[200],
            "5xx": sum(n for code, n in codes.items() if code is not None and code >= 500),
            "transport errors": codes[None],
            "jobs": len(statuses),
            "launches (CreateCustomJob)": sum(creates.values()),
            "jobs launched twice": sum(1 for n in creates.values() if n > 1),
            "dispatched events": sum(dispatched.values()),
            **latency_figures(answers),
            "requests/s": round(len(answers) / elapsed, 1),
            "all launched after s": round(launched_after, 1),
            "submit RSS before MB": round(rss_before / MB, 1),
            "submit RSS after MB": round(rss_after_load / MB, 1),
        }
    )
    row.save()

    assert codes[None] == 0, [a.error for a in answers if a.status is None][:5]
    assert set(codes) <= {200, 202}, codes
    for tag, group in by_episode.items():
        assert sorted(a.status or 0 for a in group) == [200] * (COPIES - 1) + [202], tag
        assert len({a.job_id for a in group}) == 1, tag
    assert len(by_episode) == len(EPISODES)
    job_ids = {group[0].job_id for group in by_episode.values()}
    assert set(statuses) == job_ids
    assert len(statuses) == len(EPISODES)
    assert not refused
    assert creates == Counter(dict.fromkeys(job_ids, 1)), "a job not launched exactly once"
    assert dispatched == dict.fromkeys(job_ids, 1)
    assert set(statuses.values()) == {"dispatched"}
