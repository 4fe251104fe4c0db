"""Transcript formats, as pure functions of a Transcript: the import point for all of them.

The JSON document (``podscribe.transcript/1``) is the transcript of record; every other format
is rendered from it, so a checkpoint (a partial transcript in the same JSON shape) can be
shown in any format while the job still runs, and renamed speakers show up in every format
without rewriting anything stored.

- ``json``: the record. Each segment keeps its diarization label as ``speaker`` (what the
  record is re-read by) and gains ``speaker_name``, the name shown for it (the caller's name
  for the label, else the label; null when unknown). With ``speakers`` off both are null and
  ``speakers`` is empty.
- ``srt`` and ``vtt``: captions (:mod:`podscribe.transcription.formats_captions`).
- ``txt``, ``html`` and ``podcast-json`` (the Podcasting 2.0 JSON transcript): reading
  formats (:mod:`podscribe.transcription.formats_documents`).

Every renderer takes ``(transcript, options)``; :class:`RenderOptions` holds the speaker
names, whether speakers are shown at all, and caption sizes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podscribe.transcription.formats_captions import (
    MAX_LINES,
    SRT_MAX_LINE_CHARS,
    VTT_MAX_LINE_CHARS,
    Cue,
    caption_cues,
    render_srt,
    render_vtt,
)
from podscribe.transcription.formats_documents import (
    render_html,
    render_podcast_json,
    render_txt,
)
from podscribe.transcription.render_options import DEFAULT_OPTIONS, RenderOptions
from podscribe.transcription.segments import Segment, Word

__all__ = [
    "MAX_LINES",
    "RENDERERS",
    "SCHEMA",
    "SRT_MAX_LINE_CHARS",
    "VTT_MAX_LINE_CHARS",
    "Cue",
    "RenderOptions",
    "Transcript",
    "caption_cues",
    "render",
    "render_html",
    "render_json",
    "render_podcast_json",
    "render_srt",
    "render_txt",
    "render_vtt",
]

SCHEMA = "podscribe.transcript/1"


@dataclass(frozen=True)
class Transcript:
    """A transcript and how it was made.

    Attributes:
        segments: the speech, in order.
        language: the language transcribed.
        duration: the episode's length in seconds.
        model: the model that transcribed it.
        device: ``cpu`` or ``cuda``.
        compute_type: CTranslate2 compute type.
        timings: seconds spent per stage (``download``, ``decode``, ``transcribe``, ...).
        episode: what the resolver found (show, title, audio URL, ...), when known.
        complete: False for a checkpoint: only the audio up to ``transcribed_until`` is done.
        transcribed_until: seconds of audio covered so far (the duration when complete).
        source: ``model`` (transcribed here) or ``publisher`` (the feed's own transcript,
            normalised).
        provenance: where a publisher's transcript came from (URL, type, sha256, the audio's
            declared length then); None for ``model``.
    """

    segments: tuple[Segment, ...]
    language: str
    duration: float
    model: str
    device: str
    compute_type: str
    timings: Mapping[str, float] = field(default_factory=dict)
    episode: Mapping[str, Any] | None = None
    complete: bool = True
    transcribed_until: float | None = None
    source: str = "model"
    provenance: Mapping[str, Any] | None = None

    @property
    def text(self) -> str:
        """All the words, one line per segment."""
        return "\n".join(segment.text for segment in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see :data:`SCHEMA`)."""
        return {
            "schema": SCHEMA,
            "complete": self.complete,
            "transcribed_until": round(
                self.duration if self.transcribed_until is None else self.transcribed_until, 3
            ),
            "language": self.language,
            "duration": round(self.duration, 3),
            "model": self.model,
            "device": self.device,
            "compute_type": self.compute_type,
            "timings": {name: round(value, 3) for name, value in self.timings.items()},
            "episode": dict(self.episode) if self.episode is not None else None,
            "source": self.source,
            "provenance": dict(self.provenance) if self.provenance is not None else None,
            # In order of first appearance: S1, S2, ... S10 (a text sort would put S10 second).
            "speakers": list(
                dict.fromkeys(s.speaker for s in self.segments if s.speaker is not None)
            ),
            "text": " ".join(segment.text for segment in self.segments),
            "segments": [
                {
                    "id": index,
                    "start": segment.start,
                    "end": segment.end,
                    "text": segment.text,
                    "speaker": segment.speaker,
                    "avg_logprob": round(segment.avg_logprob, 4),
                    "no_speech_prob": round(segment.no_speech_prob, 4),
                    "words": [
                        {
                            "start": w.start,
                            "end": w.end,
                            "word": w.text,
                            "probability": w.probability,
                        }
                        for w in segment.words
                    ],
                }
                for index, segment in enumerate(self.segments)
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcript:
        """Read a JSON document written by :meth:`to_dict`.

        Raises:
            ValueError: not a podscribe transcript.
        """
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        segments = tuple(
            Segment(
                start=float(item["start"]),
                end=float(item["end"]),
                text=str(item["text"]),
                words=tuple(
                    Word(
                        start=float(w["start"]),
                        end=float(w["end"]),
                        text=str(w["word"]),
                        probability=float(w["probability"]),
                    )
                    for w in item.get("words", ())
                ),
                avg_logprob=float(item.get("avg_logprob", 0.0)),
                no_speech_prob=float(item.get("no_speech_prob", 0.0)),
                speaker=str(item["speaker"]) if item.get("speaker") is not None else None,
            )
            for item in data["segments"]
        )
        return cls(
            segments=segments,
            language=str(data["language"]),
            duration=float(data["duration"]),
            model=str(data["model"]),
            device=str(data["device"]),
            compute_type=str(data["compute_type"]),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
            episode=data.get("episode"),
            complete=bool(data.get("complete", True)),
            transcribed_until=None
            if data.get("complete", True) or data.get("transcribed_until") is None
            else float(data["transcribed_until"]),
            source=str(data.get("source") or "model"),
            provenance=data.get("provenance"),
        )

    @classmethod
    def from_json(cls, payload: bytes | str) -> Transcript:
        """Parse the JSON document (see :meth:`from_dict`)."""
        return cls.from_dict(json.loads(payload))


def render_json(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """The transcript of record, as JSON, with each segment's ``speaker_name``."""
    document = transcript.to_dict()
    if not options.speakers:
        document["speakers"] = []
    for item in document["segments"]:
        if not options.speakers:
            item["speaker"] = None
        item["speaker_name"] = options.speaker(item["speaker"])
    return json.dumps(document, ensure_ascii=False, indent=1)


RENDERERS: dict[str, Callable[[Transcript, RenderOptions], str]] = {
    "json": render_json,
    "srt": render_srt,
    "vtt": render_vtt,
    "txt": render_txt,
    "html": render_html,
    "podcast-json": render_podcast_json,
}
"""Each format of ``podscribe.storage.TRANSCRIPT_FORMATS`` and its renderer."""


def render(transcript: Transcript, fmt: str, options: RenderOptions | None = None) -> str:
    """Render a transcript in one of :data:`RENDERERS`' formats.

    Args:
        transcript: what to render.
        fmt: a key of :data:`RENDERERS`.
        options: speaker names, speakers on or off, caption sizes (default: labels as they
            are, each format's own sizes).

    Raises:
        ValueError: an unknown format.
    """
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown transcript format {fmt!r}; one of {sorted(RENDERERS)}") from None
    return renderer(transcript, options or DEFAULT_OPTIONS)
