"""Jobs that end with callbacks registered, settings that let loopback receivers in, and a
clock moved forward in the outbox, for the webhook tests."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from local_emulators.loopback_server import FixtureServer
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.outbox import OutboxDelivery
from podscribe.jobs.tables import webhook_deliveries_table
from podscribe.settings import Settings, load_settings

MASTER = "master-secret-for-tests-0123456789"


def hook_settings(*receivers: FixtureServer, **overrides: object) -> Settings:
    """Settings whose SSRF guard lets ``receivers`` in, signing with :data:`MASTER`."""
    values: dict[str, object] = {
        "env": "local",
        "ssrf_allow": [receiver.host_port for receiver in receivers],
        "webhook_secret": MASTER,
        "idle_timeout_seconds": 5,
        **overrides,
    }
    return load_settings(**values)


def ended_job(
    engine: Engine,
    status: JobStatus,
    callbacks: Mapping[str, str | None],
    *,
    episode_id: int = 2,
    code: str = "not_audio",
    message: str = "HTML",
) -> Job:
    """A job every key of ``callbacks`` submitted (with its URL), run and ended as ``status``."""
    with transaction(engine) as conn:
        for key, url in callbacks.items():
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=1,
                episode_id=episode_id,
                source_url="https://x",
                key_fingerprint=key,
                callback_url=url,
            )
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=60)
        if status is JobStatus.SUCCEEDED:
            return jobs.succeed(conn, job.id, transcript_objects={"txt": "t"})
        return jobs.fail(conn, job.id, JobStatus.RUNNING, code=code, message=message)


def deliveries(engine: Engine, job_id: str | None = None) -> list[OutboxDelivery]:
    """The outbox rows (of one job), oldest first."""
    table = webhook_deliveries_table
    query = sa.select(table).order_by(table.c.created_at, table.c.key_fingerprint)
    if job_id is not None:
        query = query.where(table.c.job_id == sa.cast(job_id, table.c.job_id.type))
    with transaction(engine) as conn:
        return [OutboxDelivery.from_row(row) for row in conn.execute(query).mappings()]


def advance(engine: Engine, seconds: float) -> None:
    """Move the outbox's clock ``seconds`` forward: every row's times go that far back."""
    table = webhook_deliveries_table
    shift = sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    with transaction(engine) as conn:
        conn.execute(
            sa.update(table).values(
                created_at=table.c.created_at - shift,
                next_attempt_at=table.c.next_attempt_at - shift,
            )
        )
