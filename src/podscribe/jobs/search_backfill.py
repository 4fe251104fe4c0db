"""Index the transcripts of jobs that succeeded before search existed (migration ``0007``).

From ``0007`` on, the worker indexes a job in the transaction that makes it succeeded
(:func:`~podscribe.jobs.search.index_transcript`). A job that had succeeded before has no
segment rows; this reads its stored JSON transcript and indexes it, a job per transaction,
each only while it is still succeeded and still unindexed (the row is locked first, so a
concurrent delete or re-run wins). Safe to run again, and while the API serves:

    python -m podscribe.jobs.search_backfill
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe.db import create_db_engine, transaction, wait_for_database
from podscribe.errors import DatabaseUnavailableError, SettingsError, StorageError
from podscribe.jobs.model import JobStatus
from podscribe.jobs.search import index_transcript
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.tables import transcript_segments_table as _segments
from podscribe.storage import TranscriptStore
from podscribe.transcription.formats import Transcript

__all__ = ["backfill", "main"]

log = logging.getLogger(__name__)
_BATCH = 100


def backfill(engine: Engine, store: TranscriptStore, *, batch: int = _BATCH) -> int:
    """Index every succeeded job that has no segment rows yet.

    Args:
        engine: the database.
        store: the transcripts bucket (each job's ``transcript.json``).
        batch: jobs looked up per query.

    Returns:
        How many jobs got segment rows. A job whose transcript is missing or unreadable is
        logged and left (its transcript link answers ``410 transcript_gone`` anyway); one
        with no speech has no rows to write, so each run reads it again (and finds none).
    """
    indexed = 0
    tried: set[uuid.UUID] = set()
    while True:
        with transaction(engine) as conn:
            pending = conn.execute(_unindexed(batch, tried)).all()
        if not pending:
            return indexed
        for job_id, name in pending:
            tried.add(job_id)
            try:
                transcript = Transcript.from_json(store.get(name))
            except (FileNotFoundError, StorageError, KeyError, TypeError, ValueError) as error:
                log.warning("transcript not indexed", extra={"job_id": job_id, "error": str(error)})
                continue
            with transaction(engine) as conn:
                # Locked and checked again: deleted, failed or indexed meanwhile is left alone.
                still = conn.execute(
                    _unindexed(1, set()).where(_jobs.c.id == job_id).with_for_update(of=_jobs)
                ).first()
                if still is not None and index_transcript(conn, job_id, transcript.segments):
                    indexed += 1


def _unindexed(limit: int, skip: set[uuid.UUID]) -> sa.Select[uuid.UUID, str]:
    """Succeeded jobs with a JSON transcript and no segment rows, ``skip`` left out."""
    name = _jobs.c.transcript_objects["json"].astext
    query = (
        sa.select(_jobs.c.id, name)
        .where(
            _jobs.c.status == JobStatus.SUCCEEDED.value,
            name.is_not(None),
            ~sa.exists().where(_segments.c.job_id == _jobs.c.id),
        )
        .order_by(_jobs.c.id)
        .limit(limit)
    )
    return query.where(_jobs.c.id.not_in(skip)) if skip else query


def main(argv: list[str] | None = None) -> int:
    """``python -m podscribe.jobs.search_backfill``: index what succeeded before ``0007``."""
    from podscribe.log import configure_logging
    from podscribe.settings import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m podscribe.jobs.search_backfill", description=__doc__
    )
    parser.parse_args(argv)
    try:
        settings = get_settings()
        configure_logging(settings)
        engine = create_db_engine(settings)
        wait_for_database(engine, settings)
        count = backfill(engine, TranscriptStore(settings))
    except (SettingsError, DatabaseUnavailableError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"indexed {count} job(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
