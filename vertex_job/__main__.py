"""``python -m vertex_job --job-id <id>``: the job container's entry point.

It runs the job it was launched for. With ``PODSCRIBE_WORKER_IDLE_SECONDS`` above 0 it then
stays warm (:mod:`podscribe.jobs.warm_worker`): it takes the jobs dispatch hands it, or the
oldest queued one, each with its own lease, until it has idled that long or worked
``PODSCRIBE_WORKER_MAX_SECONDS``; its model stays loaded in between. With 0 (the default)
it exits after the one job.

Exit codes, of the last job it ran: 0 it succeeded, or there was nothing to do (not
dispatched, or taken back by the sweep); 1 it failed and the row says why; 75 a transient
fault outlasted the retries and the job went back to the queue; 2 the configuration or the
database is unusable.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from podscribe.db import create_db_engine, wait_for_database
from podscribe.errors import DatabaseUnavailableError, JobNotFoundError, SettingsError
from podscribe.jobs.warm_worker import serve
from podscribe.jobs.worker import JobOutcome
from podscribe.log import configure_logging
from podscribe.settings import get_settings

log = logging.getLogger("vertex_job")

EXIT_CODES = {
    JobOutcome.SUCCEEDED: 0,
    JobOutcome.SKIPPED: 0,
    JobOutcome.LOST: 0,
    JobOutcome.FAILED: 1,
    JobOutcome.REQUEUED: 75,  # EX_TEMPFAIL
}
EXIT_UNUSABLE = 2


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, connect, run the job; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m vertex_job",
        description="Transcribe a podscribe job (and, when warm, the ones after it).",
    )
    parser.add_argument("--job-id", required=True, help="the job's id (a UUID)")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    configure_logging(settings)
    # Preemption sends SIGTERM: unwind (temporary files go, the row stays running, a warm
    # worker's row goes exited) and let the sweep hand the job to a new attempt, which
    # resumes from the last checkpoint.
    signal.signal(signal.SIGTERM, _terminated)
    engine = create_db_engine(settings)
    try:
        wait_for_database(engine, settings)
        outcome = serve(args.job_id, settings=settings, engine=engine)
    except (JobNotFoundError, DatabaseUnavailableError) as error:
        # An expected answer, not a bug: the message says it all, no traceback.
        log.warning("cannot run the job", extra={"job_id": args.job_id, "error": str(error)})
        return EXIT_UNUSABLE
    finally:
        engine.dispose()
    log.info("job run finished", extra={"job_id": args.job_id, "outcome": outcome.value})
    return EXIT_CODES[outcome]


if __name__ == "__main__":
    raise SystemExit(main())
