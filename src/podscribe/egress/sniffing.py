"""Is it audio? Containers podcasts ship in, recognised by their first bytes.

A download's Content-Type is a claim; the first bytes are evidence. A login page, an error
JSON or a feed served where audio should be is refused before it reaches the decoder.
:func:`sniff_audio` says so as a :class:`SniffVerdict` with a reason code, so callers branch
on the code, never on the wording of a message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SniffReason", "SniffVerdict", "detect_audio_format", "sniff_audio"]


# (offset, magic, format): containers podcasts ship in, matched on the first bytes.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"ID3", "mp3"),
    (4, b"ftyp", "mp4"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (0, b"caff", "caf"),
    (0, b"#!AMR", "amr"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "wma"),
)


def detect_audio_format(head: bytes) -> str | None:
    """Recognise an audio container from a file's first bytes.

    Args:
        head: at least the first 12 bytes (fewer only for tiny files).

    Returns:
        ``mp3``, ``aac`` (ADTS), ``mp4`` (M4A/MP4 ``ftyp``), ``ogg``, ``flac``, ``wav``,
        ``webm`` (Matroska/EBML), ``aiff``, ``caf``, ``amr`` or ``wma``; None when unknown.
    """
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An 11-bit frame sync: layer bits 00 mean AAC in ADTS, anything else MPEG audio.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


class SniffReason(enum.Enum):
    """What the first bytes of a body are, as far as a download cares."""

    AUDIO = "audio"
    HTML = "html"
    MARKUP = "markup"
    JSON = "json"
    PDF = "pdf"
    EMPTY = "empty"
    UNKNOWN = "unknown"


_DESCRIPTIONS = {
    SniffReason.HTML: "the server sent an HTML page, not audio",
    SniffReason.MARKUP: "the server sent an XML/HTML document, not audio",
    SniffReason.JSON: "the server sent JSON, not audio",
    SniffReason.PDF: "the server sent a PDF, not audio",
    SniffReason.EMPTY: "the server sent an empty body, not audio",
}


@dataclass(frozen=True)
class SniffVerdict:
    """Whether a body is audio, judged from its first bytes.

    Attributes:
        reason: what the bytes are; only :attr:`SniffReason.AUDIO` is trusted as audio.
        audio_format: the container (see :func:`detect_audio_format`) when it is audio.
        detail: a sentence for the error message when it is not.
    """

    reason: SniffReason
    audio_format: str | None = None
    detail: str = ""

    @property
    def is_audio(self) -> bool:
        """Whether the body may be handed to the decoder."""
        return self.reason is SniffReason.AUDIO


def sniff_audio(head: bytes) -> SniffVerdict:
    """Judge a body by its first bytes: a known audio container, or what it is instead.

    A body that opens like a document (HTML, XML, JSON, PDF) or is empty is never audio,
    even when a magic number happens to match further in (``<!--ftyp`` is no MP4).

    Args:
        head: at least the first 12 bytes (fewer only for tiny files).

    Returns:
        The verdict; its ``reason`` is ``AUDIO`` only with an ``audio_format``.
    """
    document = _document_kind(head)
    if document is not None:
        return SniffVerdict(document, detail=_DESCRIPTIONS[document])
    audio_format = detect_audio_format(head)
    if audio_format is not None:
        return SniffVerdict(SniffReason.AUDIO, audio_format=audio_format)
    detail = f"unrecognised audio format (first bytes {head[:8].hex()})"
    return SniffVerdict(SniffReason.UNKNOWN, detail=detail)


def _document_kind(head: bytes) -> SniffReason | None:
    """The kind of document ``head`` opens, if it opens one (or is empty)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return SniffReason.HTML
    if text.startswith(b"<"):
        return SniffReason.MARKUP
    if text.startswith((b"{", b"[")):
        return SniffReason.JSON
    if text.startswith(b"%pdf"):
        return SniffReason.PDF
    if not head:
        return SniffReason.EMPTY
    return None
