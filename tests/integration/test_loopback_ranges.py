"""The loopback stand-in answers byte ranges, as podcast hosts do: a browser seeks in the
episode's audio only then (the web app's reader clicks a word and the audio jumps there)."""

from __future__ import annotations

import httpx
import pytest

from local_emulators.loopback_server import FixtureServer, Reply

BODY = bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("asked", "status", "content_range", "body"),
    [
        ("bytes=0-", 206, "bytes 0-1023/1024", BODY),
        ("bytes=10-19", 206, "bytes 10-19/1024", BODY[10:20]),
        ("bytes=1000-5000", 206, "bytes 1000-1023/1024", BODY[1000:]),
        ("bytes=-24", 206, "bytes 1000-1023/1024", BODY[1000:]),
        ("bytes=2000-", 416, "bytes */1024", b""),
        ("items=1-2", 200, None, BODY),
    ],
)
def test_a_range_is_answered_with_its_bytes(
    asked: str, status: int, content_range: str | None, body: bytes
) -> None:
    with FixtureServer() as server:
        server.route("/audio.mp3", Reply(body=BODY, content_type="audio/mpeg"))
        answer = httpx.get(server.url("/audio.mp3"), headers={"Range": asked})
    assert answer.status_code == status
    assert answer.headers.get("Content-Range") == content_range
    assert answer.content == body


def test_without_a_range_the_reply_is_unchanged() -> None:
    with FixtureServer() as server:
        server.route("/audio.mp3", Reply(body=BODY, content_type="audio/mpeg"))
        answer = httpx.get(server.url("/audio.mp3"))
    assert answer.status_code == 200
    assert answer.content == BODY
    assert "Content-Range" not in answer.headers
