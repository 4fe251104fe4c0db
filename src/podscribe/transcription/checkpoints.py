"""Checkpoints: the part of a transcript a running job has finished, kept in Cloud Storage.

A GPU can be preempted and a job can be reclaimed by the sweep; a checkpoint lets the next
attempt skip the audio already transcribed. It is a transcript JSON document (see
:mod:`podscribe.transcription.formats`) marked ``complete: false`` with ``transcribed_until``
set, so the API can also show a running job's partial transcript in any format.
"""

from __future__ import annotations

import json
import logging

from podscribe.storage import TranscriptStore, checkpoint_object_name
from podscribe.transcription.formats import Transcript, render_json

__all__ = ["load_checkpoint", "resumable", "save_checkpoint"]

log = logging.getLogger(__name__)

# A checkpoint belongs to the same audio when the decoded lengths agree this closely.
_DURATION_TOLERANCE_SECONDS = 0.5


def save_checkpoint(store: TranscriptStore, job_id: str, partial: Transcript) -> str:
    """Write a partial transcript as the job's checkpoint (overwriting the previous one).

    Returns:
        The object name.

    Raises:
        StorageError: storage kept failing.
    """
    return store.put(checkpoint_object_name(job_id), render_json(partial), "application/json")


def load_checkpoint(store: TranscriptStore, name: str) -> Transcript | None:
    """Read a checkpoint; None when it is missing or unreadable (the job starts over).

    Raises:
        StorageError: storage kept failing (transient: try the attempt again later).
    """
    try:
        payload = store.get(name)
    except FileNotFoundError:
        log.warning("checkpoint named by the job is missing", extra={"object": name})
        return None
    try:
        return Transcript.from_json(payload)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
        log.warning(
            "ignoring an unreadable checkpoint", extra={"object": name, "error": str(error)}
        )
        return None


def resumable(checkpoint: Transcript | None, *, model: str, duration: float) -> float:
    """Where a retried attempt may start: the checkpoint's end, or 0 to start over.

    A checkpoint made by another model, or for audio of another length (the episode's file
    changed between attempts), is not resumed from.
    """
    if checkpoint is None or checkpoint.complete or checkpoint.transcribed_until is None:
        return 0.0
    if checkpoint.model != model:
        log.info("checkpoint from another model; starting over", extra={"model": checkpoint.model})
        return 0.0
    if abs(checkpoint.duration - duration) > _DURATION_TOLERANCE_SECONDS:
        log.info("checkpoint for other audio; starting over", extra={"was": checkpoint.duration})
        return 0.0
    return min(checkpoint.transcribed_until, duration)
