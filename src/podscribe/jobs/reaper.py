"""``python -m podscribe.jobs.reaper``: one sweep, run the moment a local job process dies.

The local launcher wraps each job process in a shell that records its exit status and, when
the status is not 0, runs this. A job killed mid-transcription (an OOM kill, a ``kill -9``)
is thereby queued again at once, and resumes from its checkpoint, instead of waiting for its
lease to expire. It is an ordinary sweep (:func:`podscribe.jobs.sweeper.run_sweep`): safe
beside the timer's, and a no-op when the job had recorded its own failure.
"""

from __future__ import annotations

import logging

from podscribe.db import create_db_engine
from podscribe.errors import PodscribeError
from podscribe.jobs.launchers import launcher_for
from podscribe.jobs.sweeper import run_sweep
from podscribe.log import configure_logging
from podscribe.messaging import publisher_for
from podscribe.settings import get_settings

log = logging.getLogger("podscribe.jobs.reaper")


def main() -> int:
    """Sweep once; the exit status says whether it could."""
    settings = get_settings()
    configure_logging(settings)
    engine = create_db_engine(settings)
    try:
        outcome = run_sweep(engine, settings, launcher_for(settings), publisher_for(settings))
    except PodscribeError as error:
        log.warning("the sweep after a job's exit failed", extra={"code": error.code})
        return 1
    finally:
        engine.dispose()
    log.info(
        "swept after a job's exit",
        extra={"relaunched": outcome.relaunched, "worker_failed": outcome.worker_failed},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
