"""Audio downloads: streamed to disk, sniffed, refused when they are not audio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.egress.sniffing import detect_audio_format
from podscribe.errors import NotAudioError, TooLargeError, UpstreamStatusError
from podscribe.settings import load_settings

HEADS = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x21" + b"\x00" * 6,
    "mp3-frame": b"\xff\xfb\x90\x64" + b"\x00" * 12,
    "aac": b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 9,
    "mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    "ogg": b"OggS\x00\x02" + b"\x00" * 10,
    "flac": b"fLaC\x00\x00\x00\x22" + b"\x00" * 8,
    "wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81" + b"\x00" * 8,
}
EXPECTED = {"mp3-frame": "mp3"}


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


@pytest.fixture
def fetcher(server) -> Iterator[SafeFetcher]:
    settings = load_settings(env="local", ssrf_allow=[server.host_port], max_download_bytes=64_000)
    with SafeFetcher(settings) as safe:
        yield safe


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_each_container_is_recognised_and_written_whole(server, fetcher, tmp_path, kind):
    body = HEADS[kind] + bytes(range(256)) * 40
    server.route("/episode", Reply(body=body, content_type="audio/mpeg"))
    server.redirect("/tracking/episode", "/episode")

    audio = fetcher.download_audio(server.url("/tracking/episode"), tmp_path / "episode.audio")

    assert audio.audio_format == EXPECTED.get(kind, kind)
    assert audio.path.read_bytes() == body
    assert audio.size_bytes == len(body)
    assert audio.final_url == server.url("/episode")
    assert audio.content_type == "audio/mpeg"
    assert list(tmp_path.iterdir()) == [tmp_path / "episode.audio"]


def test_a_body_arriving_in_tiny_pieces_is_sniffed_and_kept_intact(server, fetcher, tmp_path):
    body = HEADS["mp4"] + b"mdat" * 100
    pieces = tuple(body[i : i + 3] for i in range(0, len(body), 3))
    server.route("/slow.m4a", Reply(chunks=pieces, content_type=None, declare_length=False))

    audio = fetcher.download_audio(server.url("/slow.m4a"), tmp_path / "a.m4a")

    assert audio.path.read_bytes() == body
    assert audio.audio_format == "mp4"


@pytest.mark.parametrize(
    "case",
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "audio/mpeg", "HTML page"),
        (b'{"error": "not found"}' + b" " * 20, "application/octet-stream", "JSON"),
        (b"<?xml version='1.0'?><rss></rss>" + b" " * 20, "audio/mpeg", "XML/HTML"),
        (b"\x00\x01\x02\x03garbage-not-audio!", "audio/mpeg", "unrecognised"),
        (b"", "audio/mpeg", "empty"),
        (HEADS["mp3"] * 4, "text/html; charset=utf-8", "text/html"),
        (HEADS["mp3"] * 4, "application/json", "application/json"),
    ],
)
def test_html_json_and_unknown_bytes_are_not_audio(server, fetcher, tmp_path, case):
    body, content_type, said = case
    server.route("/episode.mp3", Reply(body=body, content_type=content_type))

    with pytest.raises(NotAudioError, match=said) as refused:
        fetcher.download_audio(server.url("/episode.mp3"), tmp_path / "episode.mp3")

    assert refused.value.code == "not_audio"
    assert list(tmp_path.iterdir()) == []


def test_an_oversized_download_leaves_nothing_behind(server, fetcher, tmp_path):
    body = HEADS["mp3"] + b"\x00" * 70_000
    server.route("/declared", Reply(body=body, content_type="audio/mpeg"))
    server.route("/undeclared", Reply(chunks=(body,), declare_length=False))

    for path in ("/declared", "/undeclared"):
        with pytest.raises(TooLargeError):
            fetcher.download_audio(server.url(path), tmp_path / "episode.mp3")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_episode_is_an_upstream_error(server, fetcher, tmp_path):
    with pytest.raises(UpstreamStatusError) as missing:
        fetcher.download_audio(server.url("/gone.mp3"), tmp_path / "episode.mp3")
    assert missing.value.status == 404
    assert not missing.value.transient


def test_detection_needs_a_known_magic_number():
    assert detect_audio_format(b"FORM\x00\x00\x00\x00AIFF") == "aiff"
    assert detect_audio_format(b"caff\x00\x01") == "caf"
    assert detect_audio_format(b"#!AMR\n") == "amr"
    assert detect_audio_format(b"<html>") is None
    assert detect_audio_format(b"") is None
    assert detect_audio_format(b"RIFF\x00\x00\x00\x00AVI ") is None
