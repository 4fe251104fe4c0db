"""The loopback stand-in for the outside world: Apple Podcasts, a show's RSS feed and its CDN.

One server answers the requests podscribe makes in production, in the shapes the real
services use: the iTunes lookup API (``/lookup``), Apple's public episode pages
(``/<cc>/podcast/id<show>``), the show's RSS feed (``/feeds/<show>.xml``) and the audio
(``/audio/<episode>.mp3``). So the demo, the tests and the benchmarks exercise the real
resolution and the real SSRF-guarded download; only ``PODSCRIBE_ITUNES_API_BASE``,
``PODSCRIBE_APPLE_WEB_BASE`` and the ``PODSCRIBE_SSRF_ALLOW`` escape hatch point podscribe
here. It lives outside ``tests/`` because the demo (``python -m local_emulators.fixtures``,
started by the local profile) needs it too.

Each :class:`FakeEpisode` says whether it is among the lookup's most recent 200
(``in_lookup``) and whether its page exists, so both resolution paths can be exercised. Like
Apple, the lookup answers from one storefront (``country=``, the US store when absent) and
knows the show only in the storefronts it is sold in (:attr:`FakeShow.storefronts`).

    with FakeApplePodcasts(show, episodes) as apple:
        settings = load_settings(env="local", **apple.settings_overrides())
        episode = resolve_episode(EpisodeRef(show.collection_id, 1000001), settings)
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from local_emulators.loopback_server import LOOPBACK, FixtureServer, RecordedRequest, Reply

__all__ = [
    "DEMO_AUDIO",
    "EPISODE",
    "ID3_STUB",
    "DemoEpisode",
    "FakeApplePodcasts",
    "FakeEpisode",
    "FakeShow",
    "demo_podcasts",
]

# The smallest body the fetcher accepts as MP3 (an ID3v2 header, then padding); the demo
# passes real audio instead.
ID3_STUB = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 54


@dataclass(frozen=True)
class FakeShow:
    """A show as Apple lists it.

    Attributes:
        collection_id: Apple's show id.
        name: the show's name.
        artist: who makes it.
        storefronts: the Apple storefronts it is sold in (a lookup elsewhere finds nothing).
    """

    collection_id: int = 1535809341
    name: str = "The Loopback Hour"
    artist: str = "podscribe tests"
    storefronts: tuple[str, ...] = ("us",)


@dataclass(frozen=True)
class FakeEpisode:
    """One episode as Apple and the feed describe it.

    Attributes:
        episode_id: Apple's track id.
        title: the title (the feed's; ``page_title`` overrides what Apple's page says).
        guid: the feed's GUID (None: the item has none).
        published_at: publication time.
        duration_seconds: length.
        audio: the bytes served at its audio URL.
        audio_type: the Content-Type the audio is served with.
        in_lookup: among the lookup's most recent 200.
        in_feed: present in the RSS feed.
        page: whether Apple's episode page exists.
        page_guid: whether Apple's page reveals the GUID.
        page_audio: whether Apple's page reveals the audio URL.
        page_title: what Apple's page calls it, when that differs from the feed's title.
        audio_url: overrides the audio URL (e.g. a redirecting tracking URL).
    """

    episode_id: int
    title: str
    guid: str | None = None
    published_at: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 9, tzinfo=UTC))
    duration_seconds: int = 1800
    audio: bytes = ID3_STUB
    audio_type: str = "audio/mpeg"
    in_lookup: bool = True
    in_feed: bool = True
    page: bool = True
    page_guid: bool = False
    page_audio: bool = True
    page_title: str | None = None
    audio_url: str | None = None


class FakeApplePodcasts:
    """Apple's lookup API, episode pages, a feed and audio on one loopback port.

    Args:
        show: the show.
        episodes: its episodes, newest first (as the lookup lists them).
        host: the loopback address to bind.
        port: the port to bind; 0 (the default) picks a free one.
        record_requests: keep every request (for :meth:`requests_to`); off for the demo.
    """

    def __init__(
        self,
        show: FakeShow,
        episodes: list[FakeEpisode],
        *,
        host: str = LOOPBACK,
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        self.show = show
        self.episodes = list(episodes)
        self.server = FixtureServer(host, port=port, record_requests=record_requests)
        self.feed_override: Reply | None = None
        self.lookup_failures: list[Reply] = []
        self.server.route("/lookup", self._lookup)
        for country in show.storefronts:
            self.server.route(f"/{country}/podcast/id{show.collection_id}", self._page)
        self.server.route(self.feed_path, self._feed)
        for episode in self.episodes:
            self.server.route(
                f"/audio/{episode.episode_id}.mp3",
                Reply(body=episode.audio, content_type=episode.audio_type),
            )

    # --- wiring --------------------------------------------------------------------------
    def __enter__(self) -> FakeApplePodcasts:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def feed_path(self) -> str:
        return f"/feeds/{self.show.collection_id}.xml"

    @property
    def feed_url(self) -> str:
        return self.server.url(self.feed_path)

    def audio_url(self, episode: FakeEpisode) -> str:
        return episode.audio_url or self.server.url(f"/audio/{episode.episode_id}.mp3")

    def episode_link(self, episode: FakeEpisode) -> str:
        """The link a user would paste (the real host; only its ids are used)."""
        return (
            f"https://podcasts.apple.com/{self.show.storefronts[0]}/podcast/the-loopback-hour/"
            f"id{self.show.collection_id}?i={episode.episode_id}"
        )

    def settings_overrides(self) -> dict[str, Any]:
        """Settings that point podscribe here (use with ``env="local"``)."""
        return {
            "itunes_api_base": self.server.base_url,
            "apple_web_base": self.server.base_url,
            "ssrf_allow": [self.server.host_port],
        }

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.server.requests if r.path.startswith(path_prefix)]

    # --- the iTunes lookup API -------------------------------------------------------------
    def _lookup(self, request: RecordedRequest) -> Reply:
        if self.lookup_failures:
            return self.lookup_failures.pop(0)
        storefront = (request.param("country") or "us").lower()
        if (
            request.param("id") != str(self.show.collection_id)
            or storefront not in self.show.storefronts
        ):
            return _json({"resultCount": 0, "results": []})
        limit = int(request.param("limit") or 50)
        listed = [episode for episode in self.episodes if episode.in_lookup][:limit]
        results = [self._show_record(), *(self._episode_record(e) for e in listed)]
        return _json({"resultCount": len(results), "results": results})

    def _show_record(self) -> dict[str, Any]:
        return {
            "wrapperType": "track",
            "kind": "podcast",
            "collectionId": self.show.collection_id,
            "trackId": self.show.collection_id,
            "artistName": self.show.artist,
            "collectionName": self.show.name,
            "trackName": self.show.name,
            "feedUrl": self.feed_url,
            "trackCount": len(self.episodes),
        }

    def _episode_record(self, episode: FakeEpisode) -> dict[str, Any]:
        return {
            "wrapperType": "podcastEpisode",
            "kind": "podcast-episode",
            "collectionId": self.show.collection_id,
            "collectionName": self.show.name,
            "trackId": episode.episode_id,
            "trackName": episode.title,
            "episodeGuid": episode.guid,
            "episodeUrl": self.audio_url(episode),
            "previewUrl": self.audio_url(episode),
            "feedUrl": self.feed_url,
            "releaseDate": episode.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "trackTimeMillis": episode.duration_seconds * 1000,
            "episodeFileExtension": "mp3",
            "episodeContentType": "audio",
        }

    # --- Apple's public episode page -------------------------------------------------------
    def _page(self, request: RecordedRequest) -> Reply:
        wanted = request.param("i")
        episode = next((e for e in self.episodes if str(e.episode_id) == wanted), None)
        if episode is None or not episode.page:
            return Reply(status=404, body=b"<html>Not found</html>", content_type="text/html")
        return Reply(body=self.page_html(episode), content_type="text/html; charset=utf-8")

    def page_html(self, episode: FakeEpisode) -> bytes:
        title = episode.page_title or episode.title
        offer: dict[str, Any] = {
            "id": str(episode.episode_id),
            "title": title,
            "releaseDate": episode.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": episode.duration_seconds,
        }
        if episode.page_audio:
            offer["streamUrl"] = self.audio_url(episode)
        if episode.page_guid and episode.guid:
            offer["guid"] = episode.guid
        server_data = [{"data": {"headerButtonItems": [{"model": {"playAction": {
            "episodeOffer": offer}}}]}}]  # fmt: skip
        json_ld = {
            "@context": "http://schema.org",
            "@type": "PodcastEpisode",
            "name": title,
            "datePublished": episode.published_at.date().isoformat(),
            "partOfSeries": {"@type": "CreativeWorkSeries", "name": self.show.name},
        }
        return (
            "<!DOCTYPE html><html><head>"
            f"<title>{escape(title)} - Apple Podcasts</title>"
            f'<script name="schema:podcast-episode" type="application/ld+json">'
            f"{json.dumps(json_ld)}</script></head><body><h1>{escape(title)}</h1>"
            f'<script type="application/json" id="serialized-server-data">'
            f"{json.dumps(server_data)}</script></body></html>"
        ).encode()

    # --- the show's RSS feed -----------------------------------------------------------
    def _feed(self, _request: RecordedRequest) -> Reply:
        if self.feed_override is not None:
            return self.feed_override
        return Reply(body=self.feed_xml(), content_type="application/rss+xml; charset=utf-8")

    def feed_xml(self) -> bytes:
        items = "".join(self._item(e) for e in self.episodes if e.in_feed)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>{escape(self.show.name)}</title>"
            f"<link>https://example.com/show</link><description>Fixture</description>"
            f"{items}</channel></rss>"
        ).encode()

    def _item(self, episode: FakeEpisode) -> str:
        guid = f'<guid isPermaLink="false">{escape(episode.guid)}</guid>' if episode.guid else ""
        return (
            f"<item><title>{escape(episode.title)}</title>{guid}"
            f"<pubDate>{format_datetime(episode.published_at)}</pubDate>"
            f"<enclosure url={quoteattr(self.audio_url(episode))} "
            f'length="{len(episode.audio)}" type="{episode.audio_type}"/>'
            f"<itunes:duration>{episode.duration_seconds}</itunes:duration></item>"
        )


# --- the demo's show -----------------------------------------------------------------------
DEMO_AUDIO = Path(__file__).with_name("demo") / "jfk.mp3"


@dataclass(frozen=True)
class DemoEpisode:
    """The one episode the demo show publishes (JFK's 1961 inaugural address)."""

    collection_id: int = 1_000_000_001
    episode_id: int = 1_000_000_000_001
    show: str = "The Inaugural Podcast"
    title: str = "Ask Not"
    guid: str = "inaugural-1961-ask-not"
    duration_seconds: int = 11
    published: datetime = datetime(1961, 1, 20, 12, 0, tzinfo=UTC)

    @property
    def apple_url(self) -> str:
        """The Apple Podcasts link a listener would share."""
        return (
            f"https://podcasts.apple.com/us/podcast/the-inaugural-podcast/"
            f"id{self.collection_id}?i={self.episode_id}"
        )


EPISODE = DemoEpisode()


def demo_podcasts(port: int = 0, audio_path: Path = DEMO_AUDIO) -> FakeApplePodcasts:
    """The stand-in the demo starts: the demo show, its one episode, real speech as audio.

    Args:
        port: the loopback port to bind (``PODSCRIBE_LOCAL_FIXTURES_PORT``); 0 picks one.
        audio_path: the episode's audio.

    Returns:
        The stand-in, not yet started.
    """
    show = FakeShow(collection_id=EPISODE.collection_id, name=EPISODE.show, artist="podscribe")
    episode = FakeEpisode(
        episode_id=EPISODE.episode_id,
        title=EPISODE.title,
        guid=EPISODE.guid,
        published_at=EPISODE.published,
        duration_seconds=EPISODE.duration_seconds,
        audio=audio_path.read_bytes(),
    )
    return FakeApplePodcasts(show, [episode], port=port, record_requests=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m local_emulators.fixtures --port N``: serve the demo show until killed."""
    parser = argparse.ArgumentParser(prog="python -m local_emulators.fixtures")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with demo_podcasts(args.port):
        threading.Event().wait()  # the server runs on its own thread; SIGTERM ends us
    return 0


def _json(payload: dict[str, Any]) -> Reply:
    return Reply(body=json.dumps(payload).encode(), content_type="text/javascript; charset=utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
