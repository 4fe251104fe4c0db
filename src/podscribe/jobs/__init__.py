"""Jobs: the row that is the source of truth, and everything that moves it.

- :mod:`podscribe.jobs.store`: ``JobStatus``, ``Job``, the legal transitions as conditional
  updates (create or get, claim, launch, run, heartbeat, succeed, fail, sweep). Re-exported
  here: ``from podscribe import jobs; jobs.get_job(conn, job_id)``.
- :mod:`podscribe.jobs.dispatcher`: a wake-up in, one claim and one launch out.
- :mod:`podscribe.jobs.sweeper`: the periodic repair of stalled and lost jobs.
- :mod:`podscribe.jobs.webhooks`: signed callbacks when a job ends.
- :mod:`podscribe.jobs.launchers`: where a transcription job runs (Vertex AI, a local
  process, a Kubernetes Job).
"""

from podscribe.jobs.store import (
    ACTIVE_STATUSES,
    Job,
    JobEvent,
    JobStatus,
    SubmitOutcome,
    SweepReport,
    callback_urls,
    claim_for_dispatch,
    claim_next_queued,
    create_or_get_job,
    fail,
    get_job,
    heartbeat,
    job_history,
    record_launch,
    release_to_queue,
    start_running,
    succeed,
    sweep,
    transition,
    update_job_fields,
)

__all__ = [
    "ACTIVE_STATUSES",
    "Job",
    "JobEvent",
    "JobStatus",
    "SubmitOutcome",
    "SweepReport",
    "callback_urls",
    "claim_for_dispatch",
    "claim_next_queued",
    "create_or_get_job",
    "fail",
    "get_job",
    "heartbeat",
    "job_history",
    "record_launch",
    "release_to_queue",
    "start_running",
    "succeed",
    "sweep",
    "transition",
    "update_job_fields",
]
