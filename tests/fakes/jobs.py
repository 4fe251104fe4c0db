"""Job rows for launcher and dispatch tests: made in memory, or marked resolved in the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from podscribe.jobs.model import Job, JobStatus
from podscribe.jobs.transitions import update_job_fields


def dispatched_job(*, attempts: int = 1, duration: float | None = None, episode: Any = None) -> Job:
    """A freshly claimed job, as a launcher receives it."""
    now = datetime.now(UTC)
    return Job(
        id=str(uuid.uuid4()),
        collection_id=1,
        episode_id=2,
        source_url="https://podcasts.apple.com/us/podcast/x/id1?i=2",
        status=JobStatus.DISPATCHED,
        attempts=attempts,
        progress=0.0,
        created_at=now,
        queued_at=now,
        updated_at=now,
        duration_seconds=duration,
        episode=episode,
    )


def resolved_episode(job: Job) -> dict[str, Any]:
    """An episode as dispatch records it before a launch (:mod:`podscribe.jobs.preflight`)."""
    return {
        "collection_id": job.collection_id,
        "episode_id": job.episode_id,
        "guid": f"guid-{job.episode_id}",
        "show": "A Show",
        "title": "An Episode",
        "audio_url": "https://cdn.example.test/episode.mp3",
        "duration_seconds": job.duration_seconds,
        "published_at": None,
        "feed_url": None,
    }


def mark_resolved(conn: Connection, job: Job) -> Job:
    """Record an episode on a queued job, so that a test of launching on a fake (no Apple
    stand-in) starts where dispatch's resolution would have left it."""
    return update_job_fields(conn, job.id, {"episode": resolved_episode(job)})
