"""What a job is: its statuses, the legal moves between them, and the row as a value.

    queued ──claim──> dispatched ──start──> running ──succeed──> succeeded
      ^  \\               │  │                 │  │
      │   └──fail──┐      │  └──fail──┐        │  └──fail──> failed ──resubmit──┐
      └──requeue───┼──────┘           │        │                                │
      └──requeue───┼──────────────────┼────────┘ (launch refused, lease expired, │
      │            │                  │           transient fault)               │
      └────────────┼──────────────────┼─────────────────────────────────────────┘
                   v                  v
                 failed             failed

    queued ──succeed_from_publisher──> succeeded ──requeue (forced)──> queued
    (the feed carried the publisher's transcript; a caller's ``"force": true`` transcribes it)

:mod:`podscribe.jobs.transitions` and its siblings perform the moves against the database;
this module holds only values, so launchers, documents and tests can use a :class:`Job` without SQL.

Ids are :class:`uuid.UUID` where the store binds them, but :attr:`Job.id` is the canonical
string: every place a job id leaves the package (JSON documents, Pub/Sub messages, Vertex
labels, container arguments, object names, log lines) carries that string, and a job id read
from outside (a URL path, a message) is parsed once at the store's door (:func:`parse_job_id`).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from podscribe.errors import JobNotFoundError, public_message

JobId: TypeAlias = uuid.UUID | str
"""A job id as callers hold it: a UUID, or its string (from a URL, a message, :attr:`Job.id`)."""


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    # queued -> succeeded: the feed carried the publisher's transcript (no launch at all).
    JobStatus.QUEUED: frozenset({JobStatus.DISPATCHED, JobStatus.FAILED, JobStatus.SUCCEEDED}),
    JobStatus.DISPATCHED: frozenset({JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED}),
    # A succeeded job whose transcript was removed from storage fails as transcript_gone,
    # so that submitting the episode again transcribes it anew; one that took the
    # publisher's transcript is queued again when a caller forces a transcription.
    JobStatus.SUCCEEDED: frozenset({JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
}

ACTIVE_STATUSES = frozenset({JobStatus.DISPATCHED, JobStatus.RUNNING})


def parse_job_id(job_id: JobId) -> uuid.UUID:
    """The UUID a job id names.

    Raises:
        JobNotFoundError: ``job_id`` is not a UUID (no job can have that id).
    """
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(job_id)
    except (TypeError, ValueError, AttributeError):
        raise JobNotFoundError(f"no job {job_id!r}") from None


class SubmitOutcome(enum.StrEnum):
    """What :func:`~podscribe.jobs.submissions.create_or_get_job` did."""

    CREATED = "created"
    EXISTING = "existing"
    REQUEUED = "requeued"


@dataclass(frozen=True)
class Job:
    """A row of ``jobs``; ``id`` is the UUID's canonical string (see the module docstring).

    ``speakers`` and ``speaker_names`` are not the row's but the reading key's (its
    ``job_access`` row): whether it sees speaker labels, and the names it gave them.
    """

    id: str
    collection_id: int
    episode_id: int
    source_url: str
    status: JobStatus
    attempts: int
    progress: float
    created_at: datetime
    queued_at: datetime
    updated_at: datetime
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    transcript_objects: dict[str, str] | None = None
    checkpoint_object: str | None = None
    requested_language: str | None = None
    requested_model: str | None = None
    transcript_model: str = ""
    transcript_language: str = ""
    episode: dict[str, Any] | None = None
    duration_seconds: float | None = None
    language: str | None = None
    model: str | None = None
    device: str | None = None
    compute_type: str | None = None
    launcher: str | None = None
    launcher_ref: str | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    speakers_expected: int | None = None
    transcript_source: str | None = None
    provenance: dict[str, Any] | None = None
    skip_publisher: bool = False
    speaker_labels: list[str] = field(default_factory=list)
    speakers: bool = True
    speaker_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        """The job a ``jobs`` row (a mapping of column names) describes."""
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        values["id"] = str(values["id"])
        values["status"] = JobStatus(values["status"])
        if values.get("error_code"):
            # Rows failed before messages were public-only may hold raw detail: what a
            # caller reads is always derived from the code.
            values["error_message"] = public_message(values["error_code"])
        return cls(**values)

    @property
    def is_terminal(self) -> bool:
        return self.status is JobStatus.SUCCEEDED


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's history."""

    seq: int
    job_id: str
    from_status: JobStatus | None
    to_status: JobStatus
    attempts: int
    detail: str | None
    at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobEvent:
        """The event a ``job_events`` row describes."""
        return cls(
            seq=row["seq"],
            job_id=str(row["job_id"]),
            from_status=JobStatus(row["from_status"]) if row["from_status"] else None,
            to_status=JobStatus(row["to_status"]),
            attempts=row["attempts"],
            detail=row["detail"],
            at=row["at"],
        )


@dataclass(frozen=True)
class Claim:
    """The row as a claim left it.

    Attributes:
        job: the job after the attempt: ``dispatched`` when claimed, else as it stood (or
            ``failed`` when the claim found its attempts used up).
        claimed: whether this call won the claim.
    """

    job: Job
    claimed: bool


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did.

    Attributes:
        requeued: jobs whose lease expired, returned to the queue (their launch to be redone).
        failed: jobs whose lease expired with no attempts left.
        rewake: queued jobs nobody picked up (a lost message): publish them again.
    """

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rewake: list[str] = field(default_factory=list)
