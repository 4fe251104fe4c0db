"""The demo's loopback stand-in for the outside world: Apple's lookup API, a show's RSS feed
and a CDN serving real speech.

It answers exactly the requests podscribe makes in production (``/lookup?id=...&entity=
podcastEpisode``, the feed, the audio file), so the demo exercises the real resolution and
the real SSRF-guarded download; only ``PODSCRIBE_ITUNES_API_BASE`` and the
``PODSCRIBE_SSRF_ALLOW`` escape hatch point podscribe here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

DEMO_AUDIO = Path(__file__).with_name("demo") / "jfk.mp3"


@dataclass(frozen=True)
class DemoEpisode:
    """The one episode the demo show publishes."""

    collection_id: int = 1_000_000_001
    episode_id: int = 1_000_000_000_001
    show: str = "The Inaugural Podcast"
    title: str = "Ask Not"
    guid: str = "inaugural-1961-ask-not"
    duration_ms: int = 11_000
    published: datetime = datetime(1961, 1, 20, 12, 0, tzinfo=UTC)

    @property
    def apple_url(self) -> str:
        """The Apple Podcasts link a listener would share."""
        return (
            f"https://podcasts.apple.com/us/podcast/the-inaugural-podcast/"
            f"id{self.collection_id}?i={self.episode_id}"
        )


EPISODE = DemoEpisode()


class _FixtureHandler(BaseHTTPRequestHandler):
    base_url: ClassVar[str] = ""
    audio: ClassVar[bytes] = b""

    def log_message(self, format: str, *args: object) -> None:
        return  # the demo's output is the transcript, not access logs

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/lookup":
            self._lookup(parse_qs(parts.query))
        elif parts.path == "/feed.xml":
            self._send(HTTPStatus.OK, "application/rss+xml", self._feed().encode())
        elif parts.path == "/audio/ask-not.mp3":
            self._send(HTTPStatus.OK, "audio/mpeg", self.audio)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")

    def _lookup(self, query: dict[str, list[str]]) -> None:
        if query.get("id") != [str(EPISODE.collection_id)]:
            body = {"resultCount": 0, "results": []}
        else:
            body = {"resultCount": 2, "results": [self._collection(), self._episode()]}
        self._send(HTTPStatus.OK, "text/javascript; charset=utf-8", json.dumps(body).encode())

    def _collection(self) -> dict[str, object]:
        return {
            "wrapperType": "track",
            "kind": "podcast",
            "collectionId": EPISODE.collection_id,
            "trackId": EPISODE.collection_id,
            "collectionName": EPISODE.show,
            "feedUrl": f"{self.base_url}/feed.xml",
        }

    def _episode(self) -> dict[str, object]:
        return {
            "wrapperType": "podcastEpisode",
            "kind": "podcast-episode",
            "trackId": EPISODE.episode_id,
            "trackName": EPISODE.title,
            "collectionId": EPISODE.collection_id,
            "collectionName": EPISODE.show,
            "episodeUrl": f"{self.base_url}/audio/ask-not.mp3",
            "episodeGuid": EPISODE.guid,
            "feedUrl": f"{self.base_url}/feed.xml",
            "trackTimeMillis": EPISODE.duration_ms,
            "releaseDate": EPISODE.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "episodeFileExtension": "mp3",
            "episodeContentType": "audio",
        }

    def _feed(self) -> str:
        audio = f"{self.base_url}/audio/ask-not.mp3"
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>{escape(EPISODE.show)}</title>"
            f"<item><title>{escape(EPISODE.title)}</title>"
            f'<guid isPermaLink="false">{escape(EPISODE.guid)}</guid>'
            f"<pubDate>{format_datetime(EPISODE.published)}</pubDate>"
            f'<enclosure url="{escape(audio)}" length="{len(self.audio)}" type="audio/mpeg"/>'
            "<itunes:duration>11</itunes:duration></item></channel></rss>"
        )

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def make_server(port: int, audio_path: Path = DEMO_AUDIO) -> ThreadingHTTPServer:
    """A fixture server on 127.0.0.1:``port`` (0 picks a free port)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _FixtureHandler)
    handler = type(
        "DemoFixtureHandler",
        (_FixtureHandler,),
        {
            "base_url": f"http://127.0.0.1:{server.server_address[1]}",
            "audio": audio_path.read_bytes(),
        },
    )
    server.RequestHandlerClass = handler
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulators.fixtures")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with make_server(args.port) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
