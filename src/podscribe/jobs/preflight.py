"""Before a GPU is paid for: find the episode and check its audio, on dispatch's CPU.

    queued job without an episode -> resolve (Apple lookup, page, feed) -> declared length
        -> the feed item carries the publisher's transcript (and no "force")? take it:
           succeeded with no launch (podscribe.jobs.publisher); refused: go on
        -> probe the audio URL (the guard on every hop, status, type, first bytes)
        -> record the episode on the row            (then dispatch claims and launches)
        \\-> failed with the episode's code, no launch (not found, refused, too long, not audio)
        \\-> a transient fault propagates: the wake-up is redelivered, no attempt is spent

A random ``id...?i=...`` link therefore costs a lookup, never a launch. The job still checks
the audio again when it downloads it (a feed may change between dispatch and download).
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import JobStateConflictError, PodscribeError, TooLongError
from podscribe.jobs.model import Job, JobStatus
from podscribe.jobs.publisher import take_publisher_transcript
from podscribe.jobs.webhooks import notify_finished
from podscribe.podcasts import Episode, EpisodeRef, resolve_episode
from podscribe.retry import retrying
from podscribe.settings import FetchSettings, Settings

__all__ = ["check_declared_length", "resolve_before_launch"]

log = logging.getLogger(__name__)

# Dispatch's own message is redelivered with backoff: two quick probes are enough here.
_ATTEMPTS = 2


def check_declared_length(episode: Episode, settings: FetchSettings) -> None:
    """Refuse an episode whose listing declares it longer than the limit.

    Raises:
        TooLongError: ``duration_seconds`` exceeds ``max_episode_seconds``.
    """
    declared = episode.duration_seconds
    if declared is not None and declared > settings.max_episode_seconds:
        raise TooLongError(
            f"the episode's listing says {declared / 60:.0f} minutes; episodes up to "
            f"{settings.max_episode_seconds / 60:.0f} minutes are accepted"
        )


def resolve_before_launch(engine: Engine, settings: Settings, job: Job) -> Job | None:
    """Resolve a queued job's episode and probe its audio; record it, or fail the job.

    Args:
        engine: the database.
        settings: the fetch settings (the guard, timeouts) and the episode length limit.
        job: a queued job whose ``episode`` is not recorded yet.

    Returns:
        The job with its episode recorded (``succeeded`` when the publisher's transcript
        finished it here); None when it failed here (recorded, and its webhooks sent) or
        moved on meanwhile.

    Raises:
        PodscribeError: a transient fault (the lookup or the audio host is down): nothing
            was recorded and no attempt spent; the wake-up should be retried.
    """
    ref = EpisodeRef(job.collection_id, job.episode_id)
    tries = retrying(attempts=_ATTEMPTS, initial_seconds=0.5, max_seconds=2.0, log=log)
    try:
        with SafeFetcher(settings) as fetcher:
            # Resolution retries its own transient faults.
            episode = resolve_episode(ref, settings, fetcher=fetcher, with_feed_item=True)
            check_declared_length(episode, settings)
            if not job.skip_publisher and take_publisher_transcript(
                engine, settings, job, episode, fetcher=fetcher
            ):
                with transaction(engine) as conn:
                    return jobs.get_job(conn, job.id)
            audio_format = tries(fetcher.probe_audio, episode.audio_url)
    except PodscribeError as error:
        if error.transient:
            raise
        _fail_before_launch(engine, settings, job, error)
        return None
    log.info(
        "episode resolved before launch",
        extra={"job_id": job.id, "audio_format": audio_format, "title": episode.title[:200]},
    )
    with transaction(engine) as conn:
        return jobs.update_job_fields(conn, job.id, {"episode": episode.to_dict()})


def _fail_before_launch(
    engine: Engine, settings: Settings, job: Job, error: PodscribeError
) -> None:
    try:
        with transaction(engine) as conn:
            jobs.fail(conn, job.id, JobStatus.QUEUED, code=error.code, message=error.message)
    except JobStateConflictError:
        log.info("the job moved on while it was resolved", extra={"job_id": job.id})
        return
    log.info("failed before launch; no GPU spent", extra={"job_id": job.id, "code": error.code})
    notify_finished(engine, settings, [job.id])
    return
