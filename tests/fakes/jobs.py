"""Job rows made in memory, for launcher tests that need no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from podscribe.jobs.model import Job, JobStatus


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
