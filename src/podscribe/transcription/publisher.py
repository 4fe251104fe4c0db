"""The publisher's own transcript (``<podcast:transcript>``), read into our segments.

A feed may point at a transcript in one of the Podcasting 2.0 formats: WebVTT (voice spans
``<v Name>`` name the speaker), SubRip (a leading ``Name:`` does, until the next one), the
Podcasting 2.0 JSON (``segments`` of ``startTime``, ``endTime``, ``body``, ``speaker``) and
its HTML shape (``<cite>`` speaker, ``<time>`` start, ``<p>`` text). The file comes from a
host we do not control, so the parsers here are small and strict, our own rather than
webvtt-py or srt (test-only dependencies, not in the dispatch bundle): at most
:data:`MAX_CUES` cues and :data:`MAX_TEXT_CHARS` characters, every timestamp within the
audio's declared length (plus slack), JSON read with :mod:`podscribe.podcasts.untrusted_json`'s
bounds, HTML by ``html.parser`` with scripts and styles never read as text. Anything else is
refused (:class:`~podscribe.errors.UnsafeDocumentError`, or
:class:`~podscribe.errors.TooLargeError` for too many cues or too much text), and the job is
transcribed as if the feed had no transcript.

Cues become segments sorted by start, never overlapping, their text cleaned (tags, entities,
spacing), and tiny cues (word-by-word captions) joined into sentence-sized segments of one
speaker.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from podscribe.errors import TooLargeError, UnsafeDocumentError
from podscribe.podcasts.untrusted_json import NotJsonError, load_json
from podscribe.transcription.segments import Segment

__all__ = [
    "MAX_CUES",
    "MAX_TEXT_CHARS",
    "PREFERRED_TYPES",
    "parse_publisher_transcript",
    "timestamp_limit",
    "transcript_kind",
]

MAX_CUES = 50_000  # word-level captions of a six-hour episode stay well under this
MAX_TEXT_CHARS = 2_000_000
# The formats read, best first: JSON and VTT name speakers reliably, SRT by convention,
# HTML carries only start times. text/plain has no timings at all: never chosen.
PREFERRED_TYPES: dict[str, str] = {
    "application/json": "json",
    "text/vtt": "vtt",
    "application/x-subrip": "srt",
    "application/srt": "srt",
    "text/srt": "srt",
    "text/html": "html",
}
_SLACK_SECONDS = 60.0
_SLACK_FRACTION = 0.05
_MAX_GAP_SECONDS = 2.0
_MAX_SEGMENT_SECONDS = 30.0
_MAX_SEGMENT_CHARS = 400
_SENTENCE_CHARS = 40
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]*$")
_TIMESTAMP = re.compile(r"(?:(\d{1,5}):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_BLOCKS = re.compile(r"\n[ \t]*\n")
_TAG = re.compile(r"<[^>]*>")
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+([^>]+)>")
_SRT_SPEAKER = re.compile(r"^([A-Z][^\s:]*(?:[ \t]+[A-Z0-9][^\s:]*){0,3}):[ \t]+(?=\S)")
_SRT_START = re.compile(r"^(?:\d+[ \t]*\n)?[ \t]*\d{1,5}:\d{2}:\d{2}[,.]\d{1,3}[ \t]+-->")
# A reference of more digits than any character has: html.unescape would raise on it.
_HUGE_CHARREF = re.compile(r"&#[xX]?0*[0-9a-fA-F]{9,};?")
_HTML_SKIPPED = frozenset({"script", "style", "template", "noscript", "head", "title"})


@dataclass(frozen=True)
class _Cue:
    start: float
    end: float
    text: str
    speaker: str | None


def timestamp_limit(declared_seconds: float | None, max_episode_seconds: float) -> float:
    """The latest timestamp a publisher's transcript may hold: the audio's declared length
    with some slack (listings round, and intros get re-cut), else the longest episode."""
    if declared_seconds is None or declared_seconds <= 0:
        return float(max_episode_seconds)
    return declared_seconds * (1 + _SLACK_FRACTION) + _SLACK_SECONDS


def transcript_kind(declared_type: str, content: bytes) -> str | None:
    """Which parser reads a transcript: what its first bytes show, else its declared type.

    Returns:
        ``vtt``, ``srt``, ``json`` or ``html``; None when neither says.
    """
    head = _text(content[:512], strict=False).lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith(("{", "[")):
        return "json"
    if _SRT_START.match(head):
        return "srt"
    if head.startswith("<"):
        return "html"
    return PREFERRED_TYPES.get(declared_type.split(";", maxsplit=1)[0].strip().lower())


def parse_publisher_transcript(
    content: bytes, kind: str, *, max_seconds: float
) -> tuple[Segment, ...]:
    """Read a publisher's transcript into segments.

    Args:
        content: the file as fetched.
        kind: ``vtt``, ``srt``, ``json`` or ``html`` (see :func:`transcript_kind`).
        max_seconds: the latest timestamp accepted (see :func:`timestamp_limit`).

    Returns:
        Sentence-sized segments, sorted, never overlapping.

    Raises:
        UnsafeDocumentError: not readable text, not that format, no timed text, timestamps
            out of range, or JSON nested too deep.
        TooLargeError: more than :data:`MAX_CUES` cues or :data:`MAX_TEXT_CHARS` characters.
    """
    text = _text(content, strict=True).replace("\r\n", "\n").replace("\r", "\n")
    text = _HUGE_CHARREF.sub("\ufffd", text)
    readers = {"vtt": _vtt_cues, "srt": _srt_cues, "json": _json_cues, "html": _html_cues}
    if kind not in readers:
        raise UnsafeDocumentError(f"no parser for a {kind!r} transcript")
    cues = readers[kind](text)
    return _segments(cues, max_seconds)


def _text(content: bytes, *, strict: bool) -> str:
    encoding = "utf-16" if content.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        decoded = content.decode(encoding, errors="strict" if strict else "replace")
    except UnicodeDecodeError as error:
        raise UnsafeDocumentError(f"the transcript is not {encoding} text: {error}") from None
    return decoded.replace("\x00", "")


def _seconds(stamp: str) -> float | None:
    match = _TIMESTAMP.fullmatch(stamp.strip())
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        return None
    millis = int((fraction or "0").ljust(3, "0"))
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + millis / 1000


def _counted(cues: Iterable[_Cue]) -> list[_Cue]:
    kept: list[_Cue] = []
    for cue in cues:
        kept.append(cue)
        if len(kept) > MAX_CUES:
            raise TooLargeError(f"the transcript holds more than {MAX_CUES} cues")
    return kept


def _timed_blocks(text: str) -> Iterable[tuple[float, float, list[str]]]:
    """Caption blocks (VTT and SRT alike): a timing line, then the payload lines."""
    for count, block in enumerate(_BLOCKS.split(text.strip("\n"))):
        if count > 2 * MAX_CUES:
            raise TooLargeError(f"the transcript holds more than {MAX_CUES} cues")
        lines = block.split("\n")
        at = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        timing = _TIMING.match(lines[at]) if at is not None else None
        if at is None or timing is None:
            continue  # a header, NOTE, STYLE or REGION block, or a cue without a timing
        start, end = _seconds(timing[1]), _seconds(timing[2])
        if start is None or end is None:
            raise UnsafeDocumentError(f"unreadable cue timing {lines[at][:80]!r}")
        yield start, end, lines[at + 1 :]


def _vtt_cues(text: str) -> list[_Cue]:
    if not text.lstrip().startswith("WEBVTT"):
        raise UnsafeDocumentError("a WebVTT transcript must begin with WEBVTT")
    cues = []
    for start, end, lines in _timed_blocks(text):
        payload = " ".join(lines)
        voice = _VOICE.search(payload)
        speaker = _clean(voice[1]) if voice else None
        cues.append(_Cue(start, end, _clean(_TAG.sub("", payload)), speaker or None))
    return _counted(cues)


def _srt_cues(text: str) -> list[_Cue]:
    cues: list[_Cue] = []
    speaker: str | None = None
    for start, end, lines in _timed_blocks(text):
        payload = _clean(_ASS_OVERRIDE.sub("", _TAG.sub("", " ".join(lines))), unescape=False)
        named = _SRT_SPEAKER.match(payload)
        if named:
            # The name stands until the next one (captions name a speaker when it changes).
            speaker, payload = named[1], payload[named.end() :]
        cues.append(_Cue(start, end, payload, speaker))
    return _counted(cues)


def _json_cues(text: str) -> list[_Cue]:
    try:
        document = load_json(text.encode("utf-8"), "the publisher's transcript")
    except NotJsonError as error:
        raise UnsafeDocumentError(str(error)) from None
    raw = document.get("segments") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise UnsafeDocumentError("a Podcasting 2.0 JSON transcript has a segments list")
    if len(raw) > MAX_CUES:
        raise TooLargeError(f"the transcript holds {len(raw)} segments; at most {MAX_CUES}")
    cues = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        start, end, body = (
            _number(item.get("startTime")),
            _number(item.get("endTime")),
            item.get("body"),
        )
        if start is None or end is None or not isinstance(body, str):
            continue
        speaker = item.get("speaker")
        cues.append(
            _Cue(
                start,
                end,
                _clean(body),
                _clean(speaker) or None if isinstance(speaker, str) else None,
            )
        )
    return cues


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _html_cues(text: str) -> list[_Cue]:
    reader = _HtmlTranscript()
    reader.feed(text)
    reader.close()
    starts = [start for start, _, _ in reader.cues]
    cues = []
    for index, (start, speaker, parts) in enumerate(reader.cues):
        body = _clean(" ".join(parts), unescape=False)
        # HTML gives starts only: a cue lasts until the next one (the last, a reading pace).
        following = starts[index + 1] if index + 1 < len(starts) else None
        end = following if following is not None else start + max(1.0, 0.4 * len(body.split()))
        cues.append(_Cue(start, max(end, start), body, speaker))
    return cues


class _HtmlTranscript(HTMLParser):
    """``<cite>`` names the speaker, ``<time>`` starts a cue, ``<p>`` text belongs to it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cues: list[tuple[float, str | None, list[str]]] = []
        self._speaker: str | None = None
        self._open: str | None = None  # "cite", "time" or "p"
        self._buffer: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIPPED:
            self._skipping += 1
        elif tag in ("cite", "time", "p") and not self._skipping:
            self._open, self._buffer = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
            return
        if tag != self._open:
            return
        value = " ".join("".join(self._buffer).split())
        self._open = None
        if tag == "cite":
            self._speaker = value.rstrip(":").strip() or None
        elif tag == "time":
            start = _seconds(value) if ":" in value else _plain_seconds(value)
            if start is None:
                raise UnsafeDocumentError(f"unreadable <time> {value[:80]!r}")
            if len(self.cues) >= MAX_CUES:
                raise TooLargeError(f"the transcript holds more than {MAX_CUES} cues")
            self.cues.append((start, self._speaker, []))
        elif self.cues and value:
            self.cues[-1][2].append(value)

    def handle_data(self, data: str) -> None:
        if self._open is not None and not self._skipping:
            self._buffer.append(data)


def _plain_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _clean(text: str, *, unescape: bool = True) -> str:
    """Text without tags, entities or runs of spacing."""
    plain = html.unescape(_TAG.sub("", text)) if unescape else text
    return " ".join(plain.split())


def _segments(cues: list[_Cue], max_seconds: float) -> tuple[Segment, ...]:
    """Bounded, sorted, non-overlapping, sentence-sized segments of the cues."""
    total = 0
    for cue in cues:
        if not (0 <= cue.start <= max_seconds and 0 <= cue.end <= max_seconds):
            raise UnsafeDocumentError(
                f"a cue at {cue.start:.0f}-{cue.end:.0f} s lies past the audio's "
                f"{max_seconds:.0f} s"
            )
        total += len(cue.text)
        if total > MAX_TEXT_CHARS:
            raise TooLargeError(f"the transcript holds more than {MAX_TEXT_CHARS} characters")
    spoken = sorted((cue for cue in cues if cue.text), key=lambda cue: cue.start)
    if not spoken:
        raise UnsafeDocumentError("the transcript holds no timed text")
    groups: list[list[_Cue]] = []
    for cue in spoken:
        if not groups or _starts_segment(groups[-1], cue):
            groups.append([cue])
        else:
            groups[-1].append(cue)
    segments: list[Segment] = []
    for group in groups:
        start = max(group[0].start, segments[-1].end if segments else 0.0)
        end = max(start, *(cue.end for cue in group))
        text = " ".join(cue.text for cue in group)
        segments.append(Segment(round(start, 3), round(end, 3), text, speaker=group[0].speaker))
    return tuple(segments)


def _starts_segment(group: list[_Cue], cue: _Cue) -> bool:
    """Whether ``cue`` begins a new segment rather than continuing ``group``'s sentence."""
    chars = sum(len(item.text) + 1 for item in group)
    last = group[-1]
    return (
        cue.speaker != last.speaker
        or cue.start - last.end > _MAX_GAP_SECONDS
        or cue.end - group[0].start > _MAX_SEGMENT_SECONDS
        or chars + len(cue.text) > _MAX_SEGMENT_CHARS
        or (chars >= _SENTENCE_CHARS and bool(_SENTENCE_END.search(last.text)))
    )
