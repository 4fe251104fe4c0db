"""Jobs: the row that is the source of truth, and everything that moves it.

- :mod:`podscribe.jobs.model`: ``JobStatus``, ``Job``, the legal transitions, as values.
- the table's operations, re-exported here (``from podscribe import jobs;
  jobs.get_job(conn, job_id)``): the transitions as conditional updates
  (:mod:`~podscribe.jobs.transitions`), submitting and reading
  (:mod:`~podscribe.jobs.submissions`), claims and the sweep (:mod:`~podscribe.jobs.claims`).
  Every statement is a SQLAlchemy Core expression over :mod:`~podscribe.jobs.tables`, with
  bound parameters.
- a key's own jobs (:mod:`~podscribe.jobs.listing`): pages of them, newest first, and giving
  one up (the row goes with the last key).
- :mod:`podscribe.jobs.dispatcher`: a wake-up in, one claim and one launch out.
- :mod:`podscribe.jobs.sweeper`: the periodic repair of stalled and lost jobs.
- :mod:`podscribe.jobs.dispatch_function`: the dispatch Cloud Function's event handlers.
- :mod:`podscribe.jobs.worker` and :mod:`podscribe.jobs.lease`: one transcription run, and
  the heartbeat that keeps its lease (``python -m vertex_job``).
- :mod:`podscribe.jobs.webhooks`: signed callbacks when a job ends.
- :mod:`podscribe.jobs.launchers`: where a transcription job runs (Vertex AI, a local
  process, a Kubernetes Job).
"""

from podscribe.jobs.claims import (
    claim,
    claim_for_dispatch,
    claim_next_queued,
    count_active,
    hold_launch_slots,
    launched_jobs,
    sweep,
)
from podscribe.jobs.listing import (
    AccessRemoval,
    JobPage,
    ListPosition,
    list_jobs,
    remove_access,
)
from podscribe.jobs.model import (
    ACTIVE_STATUSES,
    TRANSITIONS,
    Claim,
    Job,
    JobEvent,
    JobId,
    JobStatus,
    SubmitOutcome,
    SweepReport,
    parse_job_id,
)
from podscribe.jobs.submissions import (
    callback_urls,
    create_or_get_job,
    get_job,
    job_history,
)
from podscribe.jobs.transitions import (
    fail,
    heartbeat,
    lock_job,
    record_launch,
    requeue,
    start_running,
    succeed,
    transition,
    update_job_fields,
)

__all__ = [
    "ACTIVE_STATUSES",
    "TRANSITIONS",
    "AccessRemoval",
    "Claim",
    "Job",
    "JobEvent",
    "JobId",
    "JobPage",
    "JobStatus",
    "ListPosition",
    "SubmitOutcome",
    "SweepReport",
    "callback_urls",
    "claim",
    "claim_for_dispatch",
    "claim_next_queued",
    "count_active",
    "create_or_get_job",
    "fail",
    "get_job",
    "heartbeat",
    "hold_launch_slots",
    "job_history",
    "launched_jobs",
    "list_jobs",
    "lock_job",
    "parse_job_id",
    "record_launch",
    "remove_access",
    "requeue",
    "start_running",
    "succeed",
    "sweep",
    "transition",
    "update_job_fields",
]
