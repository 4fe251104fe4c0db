"""Transcript formats: JSON, SRT, WebVTT and plain text, as pure functions of a Transcript.

The JSON document is the transcript of record; the other three are rendered from it, so a
checkpoint (a partial transcript in the same JSON shape) can be shown in any format while
the job still runs.

Captions follow the usual broadcast limits: at most two lines of about 42 characters per cue,
so a long segment is split at word boundaries (using word timings when there are any,
otherwise sharing the segment's time out by characters). Timestamps are ``HH:MM:SS,mmm`` in
SRT and ``HH:MM:SS.mmm`` in WebVTT. WebVTT escapes ``&``, ``<`` and ``>``; neither format
lets ``-->`` (the timing arrow) or a blank line appear inside cue text.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podscribe.transcription.segments import Segment, Word

__all__ = [
    "RENDERERS",
    "Cue",
    "Transcript",
    "caption_cues",
    "render",
    "render_json",
    "render_srt",
    "render_txt",
    "render_vtt",
]

SCHEMA = "podscribe.transcript/1"
MAX_LINE_CHARS = 42
MAX_LINES = 2
_MIN_CUE_SECONDS = 0.3
_PARAGRAPH_PAUSE_SECONDS = 2.0
_ARROW = re.compile(r"-{2,}>")  # "--->" too: replacing "-->" once would leave one behind


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
            "speakers": sorted({s.speaker for s in self.segments if s.speaker is not None}),
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


@dataclass(frozen=True)
class Cue:
    """One caption: at most :data:`MAX_LINES` lines of about :data:`MAX_LINE_CHARS`."""

    start: float
    end: float
    lines: tuple[str, ...]


def caption_cues(
    segments: Iterable[Segment], *, max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[Cue]:
    """Split segments into caption-sized cues, in order and never overlapping.

    Args:
        segments: the transcript's segments.
        max_chars: the longest line.
        max_lines: lines per cue.
    """
    cues: list[Cue] = []
    for segment in segments:
        words = list(segment.words) or _spread_words(segment)
        group: list[Word] = []
        for word in words:
            candidate = [*group, word]
            if group and len(_wrap(_join(candidate), max_chars)) > max_lines:
                cues.append(_cue(group, max_chars))
                group = [word]
            else:
                group = candidate
        if group:
            cues.append(_cue(group, max_chars))
    return _without_overlaps(cues)


def _join(words: Iterable[Word]) -> str:
    return " ".join(_clean(word.text) for word in words if _clean(word.text))


def _clean(text: str) -> str:
    """Cue text may hold neither the timing arrow nor a line break."""
    return " ".join(_ARROW.sub("->", text).split())


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=False)


def _cue(words: list[Word], max_chars: int) -> Cue:
    return Cue(words[0].start, words[-1].end, tuple(_wrap(_join(words), max_chars)))


def _spread_words(segment: Segment) -> list[Word]:
    """Words without timings: share the segment's time out by their length."""
    texts = segment.text.split()
    total = sum(len(text) + 1 for text in texts) or 1
    span = max(segment.end - segment.start, 0.0)
    words, position = [], segment.start
    for text in texts:
        length = span * (len(text) + 1) / total
        words.append(Word(round(position, 3), round(position + length, 3), text, 1.0))
        position += length
    return words


def _without_overlaps(cues: list[Cue]) -> list[Cue]:
    ordered = sorted((cue for cue in cues if cue.lines), key=lambda cue: cue.start)
    fixed: list[Cue] = []
    for index, cue in enumerate(ordered):
        start = max(cue.start, fixed[-1].end if fixed else 0.0)
        end = max(cue.end, start + _MIN_CUE_SECONDS)
        if index + 1 < len(ordered) and ordered[index + 1].start > start:
            end = min(end, ordered[index + 1].start)
        fixed.append(Cue(round(start, 3), round(max(end, start + 0.001), 3), cue.lines))
    return fixed


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def render_json(transcript: Transcript) -> str:
    """The transcript of record, as JSON."""
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=1)


def render_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    blocks = [
        f"{index}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        + "\n".join(cue.lines)
        for index, cue in enumerate(caption_cues(transcript.segments), start=1)
    ]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def render_vtt(transcript: Transcript) -> str:
    """WebVTT: a header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` with escaped text."""
    blocks = ["WEBVTT"]
    for cue in caption_cues(transcript.segments):
        blocks.append(
            f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n"
            + "\n".join(_escape_vtt(line) for line in cue.lines)
        )
    return "\n\n".join(blocks) + "\n"


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_txt(transcript: Transcript) -> str:
    """Plain text: the words, a new paragraph wherever the speaker paused a while."""
    paragraphs: list[list[str]] = []
    previous_end: float | None = None
    for segment in transcript.segments:
        pause = previous_end is not None and segment.start - previous_end >= (
            _PARAGRAPH_PAUSE_SECONDS
        )
        if not paragraphs or pause:
            paragraphs.append([])
        paragraphs[-1].append(segment.text)
        previous_end = segment.end
    return "".join(" ".join(words) + "\n\n" for words in paragraphs).rstrip("\n") + "\n"


RENDERERS: dict[str, Callable[[Transcript], str]] = {
    "json": render_json,
    "srt": render_srt,
    "vtt": render_vtt,
    "txt": render_txt,
}
"""Each format of ``podscribe.storage.TRANSCRIPT_FORMATS`` and its renderer."""


def render(transcript: Transcript, fmt: str) -> str:
    """Render a transcript in one of :data:`RENDERERS`' formats.

    Raises:
        ValueError: an unknown format.
    """
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown transcript format {fmt!r}; one of {sorted(RENDERERS)}") from None
    return renderer(transcript)
