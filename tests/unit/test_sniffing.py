"""Sniffing: a typed verdict on a body's first bytes, with a reason code to branch on."""

from __future__ import annotations

import pytest

from podscribe.egress.sniffing import SniffReason, sniff_audio


@pytest.mark.parametrize(
    ("head", "audio_format"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"\x00\x00\x00\x20ftypM4A ", "mp4"),
        (b"OggS\x00\x02", "ogg"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
    ],
)
def test_audio_is_audio_with_its_format(head: bytes, audio_format: str) -> None:
    verdict = sniff_audio(head)
    assert verdict.reason is SniffReason.AUDIO
    assert verdict.is_audio
    assert verdict.audio_format == audio_format


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"<!DOCTYPE html><html>", SniffReason.HTML),
        (b"\xef\xbb\xbf  <html lang=en>", SniffReason.HTML),
        (b'<?xml version="1.0"?><rss>', SniffReason.MARKUP),
        (b'{"error": "forbidden"}', SniffReason.JSON),
        (b"[1, 2, 3]", SniffReason.JSON),
        (b"%PDF-1.7\n", SniffReason.PDF),
        (b"", SniffReason.EMPTY),
        (b"MZ\x90\x00\x03\x00\x00\x00", SniffReason.UNKNOWN),
        (b"   ", SniffReason.UNKNOWN),
    ],
)
def test_anything_else_says_what_it_is(head: bytes, reason: SniffReason) -> None:
    verdict = sniff_audio(head)
    assert verdict.reason is reason
    assert not verdict.is_audio
    assert verdict.audio_format is None
    assert verdict.detail  # a sentence for the error message


def test_a_document_is_no_audio_even_when_a_magic_number_matches_inside() -> None:
    # Bytes 4..8 read "ftyp", the MP4 magic, but the body opens like markup.
    verdict = sniff_audio(b"<!--ftyp-->")
    assert verdict.reason is SniffReason.MARKUP
    assert not verdict.is_audio
