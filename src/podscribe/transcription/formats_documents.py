"""Reading formats: plain text, the Podcasting 2.0 HTML transcript and its JSON transcript.

Text and HTML are read as paragraphs: a new one wherever the speaker changes or paused a while
(:data:`PARAGRAPH_PAUSE_SECONDS`). Plain text opens a paragraph with ``Name:`` when the speaker
changes. The HTML transcript is the Podcasting 2.0 shape, ``<cite>Name:</cite>`` (when the
speaker is known), ``<time>`` (the paragraph's start, ``M:SS`` or ``H:MM:SS``) and ``<p>`` per
paragraph, inside a small complete document (charset and language declared, so a browser
opening a share link shows it right); every piece of text is escaped.

The Podcasting 2.0 JSON transcript (``version`` 1.0.0) is word by word when the transcript
has word timings, the spec's most precise form, which lets a player highlight each word; a
segment without word timings becomes one phrase. ``speaker`` is left out when unknown or when
speakers are turned off.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podscribe.transcription.render_options import DEFAULT_OPTIONS, RenderOptions

if TYPE_CHECKING:
    from podscribe.transcription.formats import Transcript

__all__ = [
    "PARAGRAPH_PAUSE_SECONDS",
    "PODCAST_JSON_VERSION",
    "render_html",
    "render_podcast_json",
    "render_txt",
]

PARAGRAPH_PAUSE_SECONDS = 2.0
PODCAST_JSON_VERSION = "1.0.0"
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


@dataclass
class _Paragraph:
    start: float
    speaker: str | None
    turn: bool  # the speaker changed here (and is known)
    texts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def _paragraphs(transcript: Transcript, options: RenderOptions) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    previous_end: float | None = None
    for segment in transcript.segments:
        text = " ".join(segment.text.split())
        if not text:
            continue
        speaker = options.speaker(segment.speaker)
        last = paragraphs[-1] if paragraphs else None
        paused = previous_end is not None and (
            segment.start - previous_end >= PARAGRAPH_PAUSE_SECONDS
        )
        if last is None or last.speaker != speaker or paused:
            changed = last is None or last.speaker != speaker
            paragraphs.append(_Paragraph(segment.start, speaker, changed and speaker is not None))
        paragraphs[-1].texts.append(text)
        previous_end = segment.end
    return paragraphs


def render_txt(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """Plain text: paragraphs, ``Name:`` opening the one where the speaker changes."""
    paragraphs = [
        f"{p.speaker}: {p.text}" if p.turn else p.text for p in _paragraphs(transcript, options)
    ]
    return "\n\n".join(paragraphs) + "\n"


def render_html(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """The Podcasting 2.0 HTML transcript: ``<cite>``, ``<time>`` and ``<p>`` per paragraph."""
    episode = transcript.episode or {}
    title = episode.get("title") if isinstance(episode.get("title"), str) else None
    language = transcript.language if _LANGUAGE_TAG.fullmatch(transcript.language) else None
    lines = [
        "<!DOCTYPE html>",
        f'<html lang="{language}">' if language else "<html>",
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_escape(f'Transcript: {title}' if title else 'Transcript')}</title>",
        "</head>",
        "<body>",
    ]
    for paragraph in _paragraphs(transcript, options):
        if paragraph.speaker is not None:
            lines.append(f"<cite>{_escape(paragraph.speaker)}:</cite>")
        start = max(paragraph.start, 0.0)
        lines.append(f'<time datetime="PT{start:.3f}S">{_clock(start)}</time>')
        lines.append(f"<p>{_escape(paragraph.text)}</p>")
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def render_podcast_json(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """The Podcasting 2.0 JSON transcript: ``{"version": "1.0.0", "segments": [...]}``."""
    segments: list[dict[str, Any]] = []
    for segment in transcript.segments:
        speaker = options.speaker(segment.speaker)
        pieces = [(w.start, w.end, w.text) for w in segment.words] or [
            (segment.start, segment.end, segment.text)
        ]
        for start, end, text in pieces:
            body = " ".join(text.split())
            if not body:
                continue
            item: dict[str, Any] = {"speaker": speaker} if speaker is not None else {}
            begins = round(max(start, 0.0), 3)
            item.update(startTime=begins, endTime=round(max(end, begins), 3), body=body)
            segments.append(item)
    document = {"version": PODCAST_JSON_VERSION, "segments": segments}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def _clock(seconds: float) -> str:
    """``M:SS`` under an hour, ``H:MM:SS`` from then on (the spec's ``<time>`` text)."""
    hours, rest = divmod(max(int(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
