"""Is it audio? Containers podcasts ship in, recognised by their first bytes.

A download's Content-Type is a claim; the first bytes are evidence. A login page, an error
JSON or a feed served where audio should be is refused before it reaches the decoder.
"""

from __future__ import annotations

__all__ = ["describe_non_audio", "detect_audio_format"]


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


def describe_non_audio(head: bytes) -> str:
    """Say what a body that is not audio looks like, for the error message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "the server sent an HTML page, not audio"
    if text.startswith(b"<"):
        return "the server sent an XML/HTML document, not audio"
    if text.startswith((b"{", b"[")):
        return "the server sent JSON, not audio"
    if text.startswith(b"%pdf"):
        return "the server sent a PDF, not audio"
    if not head:
        return "the server sent an empty body, not audio"
    return f"unrecognised audio format (first bytes {head[:8].hex()})"
