"""``PATCH /v1/transcriptions/{job_id}/speakers``: the caller names the transcript's voices.

The body is ``{"names": {"S1": "Ann Example", "S2": null}}``: a name for a label, or null to
take it away; labels not sent keep their names. The shape is checked first (400), then the
job (404, 409 until it succeeded), then each label against the transcript's and each name
(422 ``unknown_speaker``, ``invalid_speaker_name``), in
:func:`podscribe.jobs.speaker_names.rename_speakers`. The answer is the job document as
``GET`` shows it, with the names; every format the caller (and its share links) reads from
then on renders with them.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from werkzeug.wrappers import Response

from podscribe.api.admission import RequestContext
from podscribe.api.documents import job_document
from podscribe.api.request_bodies import SpeakerNamesRequest
from podscribe.api.responses import json_response
from podscribe.api.validation import read_json_body
from podscribe.db import transaction
from podscribe.errors import InvalidRequestError
from podscribe.jobs import get_job
from podscribe.jobs.outbox import webhook_state
from podscribe.jobs.share_links import list_share_links
from podscribe.jobs.speaker_names import rename_speakers
from podscribe.settings import Settings

__all__ = ["rename_speakers_response"]


def rename_speakers_response(
    context: RequestContext, settings: Settings, engine: Engine
) -> Response:
    """Apply a rename and answer with the job document (200).

    Raises:
        UnsupportedMediaTypeError, PayloadTooLargeError, InvalidRequestError: the body is not
            a JSON object ``{"names": {label: name or null}}`` within the size limit.
        JobNotFoundError: no such job, or not the caller's.
        TranscriptNotReadyError: the job has not succeeded.
        UnknownSpeakerError, InvalidSpeakerNameError: a label or a name is refused.
    """
    body = read_json_body(context.request, settings.max_request_bytes)
    try:
        request = SpeakerNamesRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidRequestError(_shape_message(error)) from None
    fingerprint = context.key.fingerprint
    with transaction(engine) as conn:
        rename_speakers(conn, context.job, fingerprint, request.names)
        job = get_job(conn, context.job, key_fingerprint=fingerprint)
        webhook = webhook_state(conn, job.id, fingerprint)
        links = list_share_links(conn, job.id, fingerprint)
    return json_response(job_document(job, context.links_base, webhook, links))


def _shape_message(error: ValidationError) -> str:
    problem = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "body"
    if problem["type"] == "extra_forbidden":
        return f'unknown field {where!r:.60}; the body is {{"names": {{label: name}}}}'
    return (
        f'the body must be {{"names": {{"S1": "a name", "S2": null}}}}: {where:.60} '
        f"{problem['msg']}"
    )
