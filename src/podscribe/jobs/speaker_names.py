"""Who speaks in a transcript: its labels, the names each key gives them, the feed's hints.

Diarization labels voices ``S1``, ``S2``, ... in order of first appearance; it never knows
names. A key names them for itself (``job_access.speaker_names``, ``PATCH .../speakers``):
one caller's names never show in another caller's files, and every format re-renders with
them. The labels are recorded on the job where its segments are indexed
(:func:`record_speaker_labels`, called by :func:`podscribe.jobs.search.index_transcript` in the
success transaction), so naming is checked against them without reading storage.

The feed's ``<podcast:person>`` hosts and guests are offered as suggestions
(:func:`speaker_suggestions`) and never put on labels by themselves: a feed lists who is on
the show, not which voice is whose.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from podscribe.errors import (
    InvalidSpeakerNameError,
    JobNotFoundError,
    TranscriptNotReadyError,
    UnknownSpeakerError,
)
from podscribe.jobs.model import JobId, JobStatus, parse_job_id
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.transcription.segments import Segment

__all__ = [
    "MAX_NAME_CHARS",
    "SUGGESTED_ROLES",
    "SpeakerRename",
    "clean_speaker_names",
    "record_speaker_labels",
    "rename_speakers",
    "speaker_labels",
    "speaker_suggestions",
]

MAX_NAME_CHARS = 80
"""Longest speaker name (after trimming)."""
SUGGESTED_ROLES = frozenset({"host", "guest"})
"""``<podcast:person>`` roles offered as speakers (a producer or an editor is not heard)."""
_MAX_SUGGESTIONS = 20
_NOT_PRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories a name may not hold: controls, format characters (bidi overrides),
surrogates, private use, unassigned, and line or paragraph separators."""


@dataclass(frozen=True)
class SpeakerRename:
    """A validated rename: names to set, labels whose name goes.

    Attributes:
        names: label to its (trimmed) name.
        removed: labels whose name is removed (sent as null).
    """

    names: Mapping[str, str]
    removed: frozenset[str]


def speaker_labels(segments: Iterable[Segment]) -> list[str]:
    """The distinct speaker labels of ``segments``, in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker is not None))


def record_speaker_labels(conn: Connection, job_id: JobId, segments: Iterable[Segment]) -> None:
    """Record a transcript's labels on its job (in the transaction that marks it succeeded).

    A job transcribed again (``"force": true`` over the publisher's transcript, or after its
    files were lost) has new voices under labels that may look the same: every key's names
    of the old ones go, rather than landing on someone else's voice.
    """
    row_id = parse_job_id(job_id)
    conn.execute(
        sa.update(_jobs).where(_jobs.c.id == row_id).values(speaker_labels=speaker_labels(segments))
    )
    conn.execute(
        sa.update(_access)
        .where(_access.c.job_id == row_id, _access.c.speaker_names != sa.cast({}, JSONB))
        .values(speaker_names={})
    )


def clean_speaker_names(labels: Iterable[str], names: Mapping[str, str | None]) -> SpeakerRename:
    """Check a rename against the transcript's labels and trim its names.

    Args:
        labels: the labels the transcript has.
        names: label to a name, or None to remove the label's name.

    Returns:
        The rename.

    Raises:
        UnknownSpeakerError: a label the transcript does not have.
        InvalidSpeakerNameError: a name that is empty once trimmed, longer than
            :data:`MAX_NAME_CHARS`, or holds a control, format or separator character.
    """
    known = set(labels)
    unknown = sorted(label for label in names if label not in known)
    if unknown:
        listed = ", ".join(sorted(known)) if known else "none"
        raise UnknownSpeakerError(
            f"the transcript has no speaker {', '.join(repr(u[:20]) for u in unknown[:5])}; "
            f"its labels: {listed}"
        )
    cleaned: dict[str, str] = {}
    removed: set[str] = set()
    for label, name in names.items():
        if name is None:
            removed.add(label)
            continue
        trimmed = name.strip()
        if not 1 <= len(trimmed) <= MAX_NAME_CHARS:
            raise InvalidSpeakerNameError(
                f"the name of {label} must be 1 to {MAX_NAME_CHARS} characters once trimmed, "
                f"not {len(trimmed)}"
            )
        if any(unicodedata.category(char) in _NOT_PRINTABLE for char in trimmed):
            raise InvalidSpeakerNameError(
                f"the name of {label} holds a control, format or line separator character"
            )
        cleaned[label] = trimmed
    return SpeakerRename(cleaned, frozenset(removed))


def rename_speakers(
    conn: Connection, job_id: JobId, key_fingerprint: str, names: Mapping[str, str | None]
) -> dict[str, str]:
    """Give a key's names to a succeeded job's speaker labels (or take them away).

    Names not mentioned are kept. One statement merges the change into the stored names,
    so two renames at once both land.

    Args:
        conn: the connection; the caller's transaction commits the rename.
        job_id: the job.
        key_fingerprint: whose names.
        names: label to a name, or None to remove the label's name.

    Returns:
        The key's names after the rename.

    Raises:
        JobNotFoundError: no such job, or not visible to the key.
        TranscriptNotReadyError: the job has not succeeded.
        UnknownSpeakerError, InvalidSpeakerNameError: see :func:`clean_speaker_names`.
    """
    row_id = parse_job_id(job_id)
    found = (
        conn.execute(
            sa.select(_jobs.c.status, _jobs.c.speaker_labels)
            .select_from(_jobs.join(_access, _access.c.job_id == _jobs.c.id))
            .where(_jobs.c.id == row_id, _access.c.key_fingerprint == key_fingerprint)
        )
        .mappings()
        .first()
    )
    if found is None:
        raise JobNotFoundError(f"no job {job_id}")
    if found["status"] != JobStatus.SUCCEEDED:
        raise TranscriptNotReadyError(
            f"job {job_id} is {found['status']}; speakers can be named once it has succeeded"
        )
    rename = clean_speaker_names(found["speaker_labels"] or [], names)
    merged = _access.c.speaker_names.op("||")(sa.cast(dict(rename.names), JSONB))
    if rename.removed:
        merged = merged.op("-")(sa.cast(sorted(rename.removed), sa.ARRAY(sa.Text)))
    stored = conn.execute(
        sa.update(_access)
        .where(_access.c.job_id == row_id, _access.c.key_fingerprint == key_fingerprint)
        .values(speaker_names=merged)
        .returning(_access.c.speaker_names)
    ).scalar_one()
    return {str(label): str(name) for label, name in dict(stored).items()}


def speaker_suggestions(episode: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The hosts and guests the feed names for the episode (``<podcast:person>``).

    Args:
        episode: the resolved episode (``Job.episode``); its ``persons`` are read, each a
            mapping with ``name`` and ``role`` (``host`` when absent, as the podcast
            namespace says).

    Returns:
        ``{"name", "role"}`` for each host or guest, in the feed's order, without repeats.
    """
    persons = (episode or {}).get("persons") or []
    suggestions: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for person in persons if isinstance(persons, list) else []:
        if not isinstance(person, Mapping) or not isinstance(person.get("name"), str):
            continue
        role = str(person.get("role") or "host").strip().lower()
        name = " ".join(person["name"].split())[:MAX_NAME_CHARS]
        if role in SUGGESTED_ROLES and name and (name, role) not in seen:
            seen.add((name, role))
            suggestions.append({"name": name, "role": role})
    return suggestions[:_MAX_SUGGESTIONS]
