"""``python -m vertex_job --job-id <id>``: the job container's entry point.

Exit codes: 0 the job succeeded, or there was nothing to do (not dispatched, or taken back
by the sweep); 1 the job failed and the row says why; 75 a transient fault outlasted the
retries and the job went back to the queue; 2 the configuration or the database is unusable.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from podscribe.db import create_db_engine, wait_for_database
from podscribe.errors import DatabaseUnavailableError, JobNotFoundError, SettingsError
from podscribe.jobs.worker import JobOutcome, run_job
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
        prog="python -m vertex_job", description="Transcribe one podscribe job."
    )
    parser.add_argument("--job-id", required=True, help="the job's id (a UUID)")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    configure_logging(settings)
    # Preemption sends SIGTERM: unwind (temporary files go, the row stays running) and let
    # the sweep hand the job to a new attempt, which resumes from the last checkpoint.
    signal.signal(signal.SIGTERM, _terminated)
    engine = create_db_engine(settings)
    try:
        wait_for_database(engine, settings)
        outcome = run_job(args.job_id, settings=settings, engine=engine)
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
