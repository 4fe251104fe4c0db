"""A succeeded two-speaker job for the speaker-name and share-link tests.

The job is submitted through the real submit app, moved to ``succeeded`` with the job
operations the worker uses (claim, start, succeed, index), and its every format is stored in
fake-gcs-server as the worker writes them, rendered from a transcript whose segments carry
diarization labels.
"""

from __future__ import annotations

import html
import html.parser
import json
from typing import Any

import srt
import webvtt
from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.jobs import claim_for_dispatch, start_running, succeed, update_job_fields
from podscribe.jobs.search import index_transcript
from podscribe.settings import get_settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore, transcript_object_name
from podscribe.transcription.formats import Transcript, render
from podscribe.transcription.segments import Segment
from tests.integration.submit_support import API_KEY, EPISODE_URL

CONVERSATION = Transcript(
    segments=(
        Segment(0.0, 2.5, "Welcome to the show.", speaker="S1"),
        Segment(2.5, 5.0, "Thanks for having me here today.", speaker="S2"),
        Segment(5.0, 8.0, "Let us talk about owls and rivers.", speaker="S1"),
        Segment(8.0, 11.0, "Owls are quiet; rivers are not.", speaker="S2"),
    ),
    language="en",
    duration=11.0,
    model="tiny.en",
    device="cpu",
    compute_type="int8",
)
PERSONS = [
    {"name": "Ann Example", "role": "host"},
    {"name": "Bob Guest", "role": "guest"},
    {"name": "Pat Producer", "role": "producer"},
]


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(client: Any, key: str = API_KEY, url: str = EPISODE_URL, **fields: Any) -> Any:
    return client.post("/v1/transcriptions", json={"url": url, **fields}, headers=bearer(key))


def succeed_with_speakers(
    engine: Engine, job_id: str, transcript: Transcript = CONVERSATION
) -> dict[str, str]:
    """Store every format of ``transcript`` and mark the job succeeded, as the worker does."""
    store = TranscriptStore(get_settings())
    store.ensure_bucket()
    objects = {
        fmt: store.put(
            transcript_object_name(job_id, fmt),
            render(transcript, fmt),
            f"{content_type}; charset=utf-8",
        )
        for fmt, content_type in TRANSCRIPT_FORMATS.items()
    }
    with transaction(engine) as conn:
        claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=3)
        update_job_fields(conn, job_id, {"episode": {"title": "Owls", "persons": PERSONS}})
        start_running(conn, job_id, lease_seconds=60, model="tiny.en", device="cpu")
        succeed(conn, job_id, transcript_objects=objects, changes={"language": "en"})
        index_transcript(conn, job_id, transcript.segments)
    return objects


def succeeded_job(client: Any, engine: Engine, key: str = API_KEY, **fields: Any) -> str:
    """A job submitted by ``key`` and succeeded with :data:`CONVERSATION`; its id."""
    response = submit(client, key, **fields)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = str(response.get_json()["id"])
    succeed_with_speakers(engine, job_id)
    return job_id


class _HtmlSpeakers(html.parser.HTMLParser):
    """The text of each ``<cite>`` of an HTML transcript, and whether it holds a script."""

    def __init__(self) -> None:
        super().__init__()
        self.cites: list[str] = []
        self.scripts = 0
        self._in_cite = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_cite = tag == "cite"
        if self._in_cite:
            self.cites.append("")
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "cite":
            self._in_cite = False

    def handle_data(self, data: str) -> None:
        if self._in_cite:
            self.cites[-1] += data


def speakers_shown(fmt: str, body: str) -> set[str]:
    """The speakers a transcript in ``fmt`` shows, each format read by its own parser."""
    if fmt == "json":
        segments = json.loads(body)["segments"]
        return {s["speaker_name"] for s in segments if s.get("speaker_name")}
    if fmt == "podcast-json":
        return {s["speaker"] for s in json.loads(body)["segments"] if s.get("speaker")}
    if fmt == "vtt":
        # webvtt-py leaves a voice's character references as written.
        return {html.unescape(c.voice) for c in webvtt.from_string(body).captions if c.voice}
    if fmt == "srt":
        lines = [line for cue in srt.parse(body) for line in cue.content.splitlines()]
        return {line.split(":", 1)[0] for line in lines if ":" in line}
    if fmt == "txt":
        return {line.split(":", 1)[0] for line in body.splitlines() if ":" in line}
    if fmt == "html":
        parser = _HtmlSpeakers()
        parser.feed(body)
        assert parser.scripts == 0
        return {cite.strip().rstrip(":") for cite in parser.cites if cite.strip()}
    raise AssertionError(f"no reader for {fmt}")
