"""Search from both ends: the worker indexes a real job when it succeeds, and the CLI prints
hits, against the real submit function (helpers from ``test_search.py``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.api.auth import key_fingerprint
from podscribe.cli import EXIT_OK, EXIT_REFUSED, main
from podscribe.client import PodscribeClient
from podscribe.db import transaction
from podscribe.jobs.search_backfill import backfill
from podscribe.jobs.worker import JobOutcome, run_job
from podscribe.settings import get_settings, load_settings
from podscribe.storage import TranscriptStore
from podscribe.transcription.formats import Transcript, render_json
from podscribe.transcription.segments import Segment
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    SUBMIT_SOURCE,
    create_topic_and_subscription,
    episode_url,
    functions_framework_process,
    limited_submit_environment,
    submit_test_client,
)
from tests.integration.test_search import COLLECTION, JFK, search, submit, succeed_with


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def test_the_cli_prints_hits_as_plain_text(  # noqa: PLR0917 - pytest fixtures
    engine: Engine,
    database_url: str,
    pubsub_emulator: str,
    gcs_emulator: str,
    tmp_path: Path,
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
    with functions_framework_process(SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log") as fn:
        with PodscribeClient(fn.url, API_KEY) as api:
            job_id = api.submit(episode_url(COLLECTION, 1000))["id"]
            succeed_with(engine, job_id, ["Good evening.", f"{JFK} <b>&</b>"], title="Inaugural")
            assert api.search("country", limit=5)["items"][0]["id"] == job_id
        monkeypatch.setenv("PODSCRIBE_API_URL", fn.url)
        monkeypatch.setenv("PODSCRIBE_API_KEY", API_KEY)
        get_settings.cache_clear()
        try:
            assert main(["search", '"your country"']) == EXIT_OK
            out = capsys.readouterr().out
            assert main(["search", "x" * 201]) == EXIT_REFUSED
        finally:
            get_settings.cache_clear()
    [line] = out.splitlines()
    assert line.startswith(f"{job_id}  0:10-0:19  Inaugural: ")
    assert "your country can do for you <b>&</b>" in line
    assert "<mark>" not in line


def test_the_worker_indexes_a_job_in_the_transaction_that_makes_it_succeeded(
    client: Any, engine: Engine, database_url: str, gcs_emulator: str, tmp_path: Path
) -> None:
    from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode
    from tests.fakes.speech import make_episode
    from tests.integration.test_vertex_job import BUCKET, FAST_RETRY, SHOW, job_settings

    path, _ = make_episode(tmp_path, seconds=12, codec="mp3", seed=5, name="search")
    episode = FakeEpisode(1000000009, "Searchable Sounds", audio=path.read_bytes())
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, tmp_path / "work")
        with transaction(engine) as conn:
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=SHOW.collection_id,
                episode_id=episode.episode_id,
                source_url=episode_url(SHOW.collection_id, episode.episode_id),
                key_fingerprint=key_fingerprint(API_KEY),
            )
            assert jobs.claim_for_dispatch(conn, job.id, lease_seconds=600, max_attempts=3)
        outcome = run_job(job.id, settings=settings, engine=engine, store=store, retry=FAST_RETRY)
    assert outcome is JobOutcome.SUCCEEDED
    with transaction(engine) as conn:
        done = jobs.get_job(conn, job.id)
        assert done.transcript_objects is not None
        # The succeeded event is written once, by the transaction of the status change: the
        # segments carry the same transaction id.
        succeeded_in = conn.execute(
            sa.text(
                "SELECT xmin::text FROM job_events WHERE job_id = :id AND to_status = 'succeeded'"
            ),
            {"id": job.id},
        ).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT seq, start_seconds, text, xmin::text AS written_in"
                " FROM transcript_segments WHERE job_id = :id ORDER BY seq"
            ),
            {"id": job.id},
        ).all()
    transcript = Transcript.from_json(store.get(done.transcript_objects["json"]))
    spoken = [(s.start, s.text.strip()) for s in transcript.segments if s.text.strip()]
    assert spoken and [(row.start_seconds, row.text) for row in rows] == spoken
    assert {row.written_in for row in rows} == {succeeded_in}
    word = max(re.findall(r"[A-Za-z]{4,}", spoken[0][1]), key=len)
    found = search(client, q=word, limit="50")["items"]
    assert (job.id, spoken[0][0]) in [(item["id"], item["start"]) for item in found]
    assert found[0]["title"] == "Searchable Sounds" and found[0]["show"] == SHOW.name


def _succeeded_before_search(
    client: Any, engine: Engine, store: TranscriptStore, episode: int, *texts: str
) -> str:
    """A job that succeeded with its transcript stored and no segment rows (as before 0007)."""
    job_id = submit(client, episode)
    transcript = Transcript(
        segments=tuple(Segment(5.0 * n, 5.0 * n + 4.0, text) for n, text in enumerate(texts)),
        language="en",
        duration=5.0 * len(texts),
        model="tiny.en",
        device="cpu",
        compute_type="int8",
    )
    name = store.put(
        f"transcripts/{job_id}/transcript.json", render_json(transcript), "application/json"
    )
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job_id, lease_seconds=60)
        jobs.succeed(conn, job_id, transcript_objects={"json": name})
    return job_id


def test_the_backfill_indexes_jobs_that_succeeded_before_search(
    client: Any, engine: Engine
) -> None:
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    old = _succeeded_before_search(client, engine, store, 1000, "Gulls at dawn.", "Lighthouses.")
    silent = _succeeded_before_search(client, engine, store, 1001)
    gone = _succeeded_before_search(client, engine, store, 1002, "Gulls again.")
    store.delete_job_objects(gone, [f"transcripts/{gone}/transcript.json"])
    current = submit(client, 1003)
    succeed_with(engine, current, ["Gulls and terns."])
    assert [item["id"] for item in search(client, q="gulls")["items"]] == [current]
    # old gets rows; silent has none to write; gone is logged and left.
    assert backfill(engine, store, batch=1) == 1
    found = {(item["id"], item["start"]) for item in search(client, q="gull*")["items"]}
    assert found == {(old, 0.0), (current, 0.0)}
    assert search(client, q="lighthouse")["items"][0]["start"] == 5.0
    assert backfill(engine, store) == 0, "a second run finds nothing left to do"
    with transaction(engine) as conn:
        rows = conn.execute(
            sa.text("SELECT job_id, count(*) FROM transcript_segments GROUP BY job_id")
        ).all()
    # Neither silent nor gone has rows; every other job has its segments once.
    assert {(str(job), count) for job, count in rows} == {(old, 2), (current, 1)}
    assert {silent, gone}.isdisjoint({old, current})
