"""Episode resolution: an ``EpisodeRef`` (:mod:`podscribe.podcasts.links`) in, an ``Episode`` out.

:func:`resolve_episode` asks the iTunes lookup API about the show. The lookup lists only the
most recent 200 episodes, so an older one is found by reading Apple's public episode page
(title, date, audio URL) and matching it in the show's RSS feed (:mod:`podscribe.podcasts.feed`).
Everything is fetched through :class:`~podscribe.egress.fetcher.SafeFetcher`. The lookup is asked in
the link's storefront (:mod:`podscribe.podcasts.lookup`). Apple allows roughly 20 lookups a
minute, so answers are cached (bounded, ``lookup_cache_seconds``) and 429/5xx answers are
retried a few times with capped backoff.

The Podcasting 2.0 tags of the episode's feed item (the publisher's transcripts, the people
in it) come with an episode found in the feed. One the lookup already gives the audio of
was not looked for in the feed; ``with_feed_item=True`` (dispatch, before any launch) reads
the feed for them too, at most once per feed item and ``lookup_cache_seconds`` (the answers
are cached, bounded), and without failing the resolution: the audio is known either way.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import TLRUCache

from podscribe.egress.fetcher import FetchedDocument, SafeFetcher
from podscribe.errors import EpisodeNotFoundError, PodscribeError, UpstreamStatusError
from podscribe.podcasts.feed import parse_feed
from podscribe.podcasts.feed_search import find_entry
from podscribe.podcasts.links import EpisodeRef
from podscribe.podcasts.lookup import (
    LookupAnswer,
    LookupCache,
    LookupEpisode,
    lookup_url,
    parse_lookup,
)
from podscribe.podcasts.page import EpisodePage, parse_episode_page
from podscribe.podcasts.podcast_namespace import Person, PublisherTranscriptRef
from podscribe.retry import retrying
from podscribe.settings import FetchSettings

__all__ = [
    "Episode",
    "clear_lookup_cache",
    "resolve_episode",
]

log = logging.getLogger(__name__)

_CACHE_ENTRIES = 256
_FEED_ACCEPT = "application/rss+xml, application/xml;q=0.9, */*;q=0.5"
_ATTEMPTS = 4
_MAX_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Episode:
    """A resolved episode: what transcription and the job record need.

    Attributes:
        collection_id: Apple's show id.
        episode_id: Apple's episode id.
        guid: the feed's GUID for the episode, when known.
        show: the show's name.
        title: the episode's title.
        audio_url: where the audio is (always fetched through the guard).
        duration_seconds: length, when Apple or the feed says.
        published_at: publication time (UTC), when known.
        feed_url: the show's RSS feed, when known.
        transcripts: the feed item's ``<podcast:transcript>`` references, when read.
        persons: the feed item's ``<podcast:person>`` tags (or the channel's), when read.
    """

    collection_id: int
    episode_id: int
    guid: str | None
    show: str
    title: str
    audio_url: str
    duration_seconds: float | None
    published_at: datetime | None
    feed_url: str | None
    transcripts: tuple[PublisherTranscriptRef, ...] = ()
    persons: tuple[Person, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``published_at`` as ISO 8601)."""
        return {
            "collection_id": self.collection_id,
            "episode_id": self.episode_id,
            "guid": self.guid,
            "show": self.show,
            "title": self.title,
            "audio_url": self.audio_url,
            "duration_seconds": self.duration_seconds,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "feed_url": self.feed_url,
            "transcripts": [ref.to_dict() for ref in self.transcripts],
            "persons": [person.to_dict() for person in self.persons],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        """The inverse of :meth:`to_dict` (rows recorded before the feed's tags were read
        have no ``transcripts`` or ``persons``)."""
        published = data.get("published_at")
        duration = data.get("duration_seconds")
        return cls(
            collection_id=int(data["collection_id"]),
            episode_id=int(data["episode_id"]),
            guid=data.get("guid"),
            show=str(data["show"]),
            title=str(data["title"]),
            audio_url=str(data["audio_url"]),
            duration_seconds=float(duration) if duration is not None else None,
            published_at=datetime.fromisoformat(published) if published else None,
            feed_url=data.get("feed_url"),
            transcripts=tuple(
                PublisherTranscriptRef.from_dict(ref) for ref in data.get("transcripts") or ()
            ),
            persons=tuple(Person.from_dict(person) for person in data.get("persons") or ()),
        )


def resolve_episode(
    ref: EpisodeRef,
    settings: FetchSettings,
    *,
    fetcher: SafeFetcher | None = None,
    with_feed_item: bool = False,
) -> Episode:
    """Find an episode's audio URL and metadata.

    Args:
        ref: the show and episode ids.
        settings: the lookup and web base URLs, cache lifetime, fetch caps.
        fetcher: the guarded fetcher to use; one is made (and closed) when omitted.
        with_feed_item: also read the feed item's Podcasting 2.0 tags when the lookup gave
            the audio (best effort: a feed that cannot be read or matched leaves them empty).

    Returns:
        The episode.

    Raises:
        EpisodeNotFoundError: Apple does not know the show, or the episode is nowhere.
        AmbiguousEpisodeError: the feed holds several candidates for it.
        UnsafeDocumentError, TooLargeError: the feed was refused.
        FetchError: a fetch failed (subclasses say how; transient ones may be retried).
    """
    if fetcher is None:
        with SafeFetcher(settings) as own:
            return resolve_episode(ref, settings, fetcher=own, with_feed_item=with_feed_item)
    answer = _lookup(ref, settings, fetcher)
    if not answer.has_show and not answer.episodes:
        raise EpisodeNotFoundError(f"Apple Podcasts knows no show with id {ref.collection_id}")
    record = answer.episode(ref.episode_id)
    show_name = answer.show or ""
    feed_url = answer.feed_url or (record.feed_url if record else None)
    if record is not None and record.audio_url:
        episode = _from_lookup(ref, record, record.audio_url, show_name, feed_url)
        return _with_feed_item(episode, settings, fetcher) if with_feed_item else episode
    return _from_page_and_feed(
        ref, settings, fetcher, show_name=show_name, feed_url=feed_url, record=record
    )


def _from_lookup(
    ref: EpisodeRef, record: LookupEpisode, audio_url: str, show_name: str, feed_url: str | None
) -> Episode:
    return Episode(
        collection_id=ref.collection_id,
        episode_id=ref.episode_id,
        guid=record.guid,
        show=show_name or record.show or "",
        title=record.title or "",
        audio_url=audio_url,
        duration_seconds=record.duration_seconds,
        published_at=record.published_at,
        feed_url=feed_url,
    )


def _from_page_and_feed(
    ref: EpisodeRef,
    settings: FetchSettings,
    fetcher: SafeFetcher,
    *,
    show_name: str,
    feed_url: str | None,
    record: LookupEpisode | None,
) -> Episode:
    """An episode past the lookup's 200: what Apple's page says, found in the feed."""
    if not feed_url:
        raise EpisodeNotFoundError(
            f"episode {ref.episode_id} is not in Apple's lookup and the show has no public feed"
        )
    page = _episode_page(ref, settings, fetcher)
    if record is not None:  # listed, but without an audio URL: its GUID is the best key
        page = EpisodePage(
            title=page.title or record.title,
            published_at=page.published_at or record.published_at,
            audio_url=page.audio_url,
            guid=page.guid or record.guid,
            duration_seconds=page.duration_seconds,
        )
    document = _fetch(fetcher, feed_url, _FEED_ACCEPT)
    feed = parse_feed(document.content, max_bytes=settings.max_document_bytes)
    entry = find_entry(
        feed,
        guid=page.guid,
        audio_url=page.audio_url,
        title=page.title,
        published_at=page.published_at,
    )
    audio_url = entry.audio_url or page.audio_url
    if not audio_url:
        raise EpisodeNotFoundError(f"episode {ref.episode_id} has no audio enclosure")
    return Episode(
        collection_id=ref.collection_id,
        episode_id=ref.episode_id,
        guid=entry.guid,
        show=show_name or feed.title,
        title=entry.title or page.title or "",
        audio_url=audio_url,
        duration_seconds=entry.duration_seconds or page.duration_seconds,
        published_at=entry.published_at or page.published_at,
        feed_url=feed_url,
        transcripts=entry.transcripts,
        persons=entry.persons,
    )


def _with_feed_item(episode: Episode, settings: FetchSettings, fetcher: SafeFetcher) -> Episode:
    """The episode with its feed item's transcripts and persons, when the feed has them."""
    if not episode.feed_url:
        return episode
    key = (episode.feed_url, episode.guid, episode.audio_url)
    with _ITEM_LOCK:
        cached = _ITEM_CACHE.get(key)
    if cached is not None:
        return dataclasses.replace(episode, transcripts=cached[0], persons=cached[1])
    try:
        document = fetcher.get_document(episode.feed_url, accept=_FEED_ACCEPT)
        feed = parse_feed(document.content, max_bytes=settings.max_document_bytes)
        entry = find_entry(feed, guid=episode.guid, audio_url=episode.audio_url)
    except PodscribeError as error:
        # The audio is known; the feed's tags are a bonus that must not fail the episode.
        log.info(
            "the feed item's tags could not be read",
            extra={"feed_url": episode.feed_url[:500], "code": error.code},
        )
        return episode
    if settings.lookup_cache_seconds > 0:
        with _ITEM_LOCK:
            _ITEM_CACHE[key] = (entry.transcripts, entry.persons, settings.lookup_cache_seconds)
    return dataclasses.replace(episode, transcripts=entry.transcripts, persons=entry.persons)


def _episode_page(ref: EpisodeRef, settings: FetchSettings, fetcher: SafeFetcher) -> EpisodePage:
    base = settings.apple_web_base.rstrip("/")
    url = f"{base}/{ref.country or 'us'}/podcast/id{ref.collection_id}?i={ref.episode_id}"
    try:
        document = _fetch(fetcher, url, "text/html")
    except UpstreamStatusError as error:
        if error.status in (404, 410):
            raise EpisodeNotFoundError(f"Apple has no episode {ref.episode_id}") from error
        raise
    page = parse_episode_page(document.content, ref.episode_id)
    if not (page.guid or page.audio_url or (page.title and page.published_at)):
        raise EpisodeNotFoundError(f"Apple's page for episode {ref.episode_id} names no episode")
    return page


def _lookup(ref: EpisodeRef, settings: FetchSettings, fetcher: SafeFetcher) -> LookupAnswer:
    url = lookup_url(settings.itunes_api_base, ref.collection_id, ref.country)
    cached = _CACHE.get(url) if settings.lookup_cache_seconds > 0 else None
    if cached is not None:
        return cached
    answer = parse_lookup(_fetch(fetcher, url, "application/json").content)
    _CACHE.put(url, answer, settings.lookup_cache_seconds)
    return answer


def _fetch(fetcher: SafeFetcher, url: str, accept: str) -> FetchedDocument:
    """A document, retrying transient failures (429, 5xx, timeouts) with capped backoff."""
    attempt = retrying(attempts=_ATTEMPTS, initial_seconds=0.5, max_seconds=_MAX_WAIT_SECONDS)
    return attempt(fetcher.get_document, url, accept=accept)


_CACHE = LookupCache(_CACHE_ENTRIES)
# A feed item's tags, and for how long they may be reused (lookup_cache_seconds then).
_ItemTags = tuple[tuple[PublisherTranscriptRef, ...], tuple[Person, ...], float]
# By (feed, GUID, audio URL): a feed is read once per episode and lifetime, not per job.
_ITEM_CACHE: TLRUCache[tuple[str, str | None, str], _ItemTags] = TLRUCache(
    maxsize=_CACHE_ENTRIES, ttu=lambda _key, tags, now: now + tags[2]
)
_ITEM_LOCK = threading.Lock()


def clear_lookup_cache() -> None:
    """Forget every cached lookup and feed item (tests, or after changing the base URL)."""
    _CACHE.clear()
    with _ITEM_LOCK:
        _ITEM_CACHE.clear()
