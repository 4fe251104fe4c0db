"""Captions: SubRip (SRT) and WebVTT cues cut from a transcript's segments.

The limits are the Podcasting 2.0 transcript guidance: SRT at most 2 lines of 32 characters,
with ``Name:`` opening the first cue of each speaker's turn (the prefix counts toward the
line); WebVTT lines of at most 65 characters, 2 lines, every cue with a known speaker opening
with a ``<v Name>`` voice span (markup, so it does not count toward the width). Callers may
change both limits (:class:`~podscribe.transcription.render_options.RenderOptions`).

Cues are cut per segment, and a segment has one speaker, so a cue never spans a speaker
change. A segment is split at word boundaries, using the word timings when there are any,
otherwise sharing the segment's time out by characters; a word wider than a line is cut into
line-wide pieces. Cues come out in order and never overlap. Neither format lets ``-->`` (the
timing arrow) or a blank line appear inside a cue; WebVTT escapes ``&``, ``<`` and ``>`` in the
text and in the voice name.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podscribe.transcription.render_options import DEFAULT_OPTIONS, RenderOptions
from podscribe.transcription.segments import Segment, Word

if TYPE_CHECKING:
    from podscribe.transcription.formats import Transcript

__all__ = [
    "MAX_LINES",
    "SRT_MAX_LINE_CHARS",
    "VTT_MAX_LINE_CHARS",
    "Cue",
    "caption_cues",
    "render_srt",
    "render_vtt",
]

SRT_MAX_LINE_CHARS = 32
VTT_MAX_LINE_CHARS = 65
MAX_LINES = 2
_MIN_CUE_SECONDS = 0.3
_ARROW = re.compile(r"-{2,}>")  # "--->" too: replacing "-->" once would leave one behind
_ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Cue:
    """One caption.

    Attributes:
        start: seconds from the start of the episode.
        end: seconds from the start of the episode.
        lines: the text, already laid out (the ``Name:`` prefix included when asked for).
        speaker: the display name of who speaks it, or None.
    """

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None


def caption_cues(
    segments: Iterable[Segment],
    *,
    max_chars: int = SRT_MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    speaker_of: Callable[[str | None], str | None] = DEFAULT_OPTIONS.speaker,
    name_turns: bool = False,
) -> list[Cue]:
    """Split segments into caption-sized cues, in order and never overlapping.

    Args:
        segments: the transcript's segments.
        max_chars: the widest line.
        max_lines: lines per cue.
        speaker_of: a segment's speaker label -> the name to show (None: no speaker).
        name_turns: open the first cue of each speaker's turn with ``Name:`` (SRT).
    """
    cues: list[Cue] = []
    previous: object = object()  # no speaker yet, not even None
    prefix: str | None = None
    for segment in segments:
        speaker = speaker_of(segment.speaker)
        if speaker != previous:
            # Held until a cue shows it: a segment without words does not use it up.
            prefix = _prefix(speaker, max_chars) if name_turns and speaker else None
            previous = speaker
        for lines, timed in _layout(_tokens(segment, max_chars), prefix, max_chars, max_lines):
            cues.append(Cue(timed[0].start, timed[-1].end, lines, speaker))
            prefix = None
    return _without_overlaps(cues)


def render_srt(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, ``Name:`` at each turn."""
    cues = caption_cues(
        transcript.segments,
        max_chars=options.line_chars(SRT_MAX_LINE_CHARS),
        max_lines=options.lines(MAX_LINES),
        speaker_of=options.speaker,
        name_turns=True,
    )
    blocks = [
        f"{index}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        + "\n".join(cue.lines)
        for index, cue in enumerate(cues, start=1)
    ]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def render_vtt(transcript: Transcript, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """WebVTT: a header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` with escaped text, each
    opening with a ``<v Name>`` voice span when its speaker is known."""
    cues = caption_cues(
        transcript.segments,
        max_chars=options.line_chars(VTT_MAX_LINE_CHARS),
        max_lines=options.lines(MAX_LINES),
        speaker_of=options.speaker,
    )
    blocks = ["WEBVTT"]
    for cue in cues:
        lines = [_escape_vtt(line) for line in cue.lines]
        voice = _escape_vtt(_clean(cue.speaker)) if cue.speaker else ""
        if voice:
            lines[0] = f"<v {voice}>{lines[0]}"
        blocks.append(
            f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n" + "\n".join(lines)
        )
    return "\n\n".join(blocks) + "\n"


def _prefix(name: str, max_chars: int) -> str:
    """``Name:``, short enough to leave room for a character of text on its line."""
    name = _clean(name)
    room = max_chars - 3  # the colon, a space, one character of text
    if len(name) > room:
        name = name[: room - 1].rstrip() + _ELLIPSIS
    return f"{name}:"


def _layout(
    tokens: list[Word], prefix: str | None, max_chars: int, max_lines: int
) -> list[tuple[tuple[str, ...], list[Word]]]:
    """Fill lines greedily, a cue at a time: each cue's lines and the timed tokens in it.

    Every token fits a line (see :func:`_tokens`). The one case where a token must be cut is
    a one-line cue holding only the ``Name:`` prefix: the token fills the rest of the line.
    """
    cues: list[tuple[tuple[str, ...], list[Word]]] = []
    lines: list[str] = [prefix] if prefix else []
    timed: list[Word] = []
    queue = deque(tokens)
    while queue:
        token = queue.popleft()
        if lines and len(lines[-1]) + 1 + len(token.text) <= max_chars:
            lines[-1] += " " + token.text
        elif len(lines) < max_lines:
            lines.append(token.text)
        elif not timed:
            head, tail = _split(token, max_chars - len(lines[-1]) - 1)
            lines[-1] += " " + head.text
            queue.appendleft(tail)
            token = head
        else:
            cues.append((tuple(lines), timed))
            lines, timed = [token.text], []
        timed.append(token)
    if timed:
        cues.append((tuple(lines), timed))
    return cues


def _tokens(segment: Segment, max_chars: int) -> list[Word]:
    """The segment's words as one-line tokens: no spaces, no arrows, none wider than a line."""
    tokens: list[Word] = []
    for word in segment.words or _spread_words(segment):
        pieces = [
            part[i : i + max_chars]
            for part in _clean(word.text).split()
            for i in range(0, len(part), max_chars)
        ]
        tokens.extend(_share_time(word.start, word.end, pieces))
    return tokens


def _split(token: Word, width: int) -> tuple[Word, Word]:
    """Cut a token after ``width`` characters, its time shared out by characters."""
    head, tail = _share_time(token.start, token.end, [token.text[:width], token.text[width:]])
    return head, tail


def _share_time(start: float, end: float, texts: list[str]) -> list[Word]:
    """Timed words for ``texts`` in ``start``..``end``, each given time by its length."""
    total = sum(len(text) + 1 for text in texts) or 1
    span = max(end - start, 0.0)
    words, position = [], start
    for text in texts:
        length = span * (len(text) + 1) / total
        words.append(Word(round(position, 3), round(position + length, 3), text, 1.0))
        position += length
    return words


def _spread_words(segment: Segment) -> list[Word]:
    """Words without timings: share the segment's time out by their length."""
    return _share_time(segment.start, segment.end, segment.text.split())


def _clean(text: str) -> str:
    """Cue text may hold neither the timing arrow nor a line break."""
    return " ".join(_ARROW.sub("->", text).split())


def _without_overlaps(cues: list[Cue]) -> list[Cue]:
    """Each cue starts no earlier than the one before it ends (and lasts a moment).

    The order stays the segments' order: sorting by time could interleave the cues of two
    segments whose times overlap, mixing their sentences.
    """
    ordered = [cue for cue in cues if cue.lines]
    fixed: list[Cue] = []
    for index, cue in enumerate(ordered):
        start = max(cue.start, fixed[-1].end if fixed else 0.0)
        end = max(cue.end, start + _MIN_CUE_SECONDS)
        if index + 1 < len(ordered) and ordered[index + 1].start > start:
            end = min(end, ordered[index + 1].start)
        fixed.append(
            Cue(round(start, 3), round(max(end, start + 0.001), 3), cue.lines, cue.speaker)
        )
    return fixed


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
