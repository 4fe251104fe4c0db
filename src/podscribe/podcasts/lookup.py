"""The iTunes lookup API: the request for one show, its answer read into typed records, a cache.

Apple answers a lookup from one storefront, the US one unless ``country=`` names another, and
a show sold only elsewhere comes back empty from the US store; so the request carries the
storefront of the user's link (``podcasts.apple.com/<cc>/...``), ``us`` when it names none.

The answer is untrusted JSON (:mod:`podscribe.podcasts.untrusted_json`): absurd numbers and
nesting are refused as ``unsafe_document``, and each record's fields are read only when they
have the type Apple gives them; anything else counts as absent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from cachetools import TLRUCache

from podscribe.errors import EpisodeNotFoundError
from podscribe.podcasts.page import iso_datetime, text_or_none
from podscribe.podcasts.untrusted_json import NotJsonError, load_json

__all__ = [
    "LookupAnswer",
    "LookupCache",
    "LookupEpisode",
    "lookup_url",
    "parse_lookup",
]

LOOKUP_LIMIT = 200
_DEFAULT_COUNTRY = "us"


@dataclass(frozen=True)
class LookupEpisode:
    """One ``podcastEpisode`` record of a lookup answer.

    Attributes:
        episode_id: ``trackId``.
        title: ``trackName``.
        guid: ``episodeGuid`` (the feed item's GUID).
        audio_url: ``episodeUrl``.
        duration_seconds: ``trackTimeMillis`` in seconds, when positive.
        published_at: ``releaseDate``.
        feed_url: ``feedUrl``.
        show: ``collectionName``.
    """

    episode_id: int
    title: str | None
    guid: str | None
    audio_url: str | None
    duration_seconds: float | None
    published_at: datetime | None
    feed_url: str | None
    show: str | None


@dataclass(frozen=True)
class LookupAnswer:
    """A lookup answer: the show record (when present) and the episodes listed.

    Attributes:
        has_show: whether a show record (``wrapperType: track``) came back.
        show: the show's name, from its record or else the first episode's.
        feed_url: the show's feed, from its record (None without one).
        episodes: the episode records, in Apple's order.
    """

    has_show: bool
    show: str | None
    feed_url: str | None
    episodes: tuple[LookupEpisode, ...]

    def episode(self, episode_id: int) -> LookupEpisode | None:
        """The listed episode with this id, if any."""
        return next((item for item in self.episodes if item.episode_id == episode_id), None)


def lookup_url(base: str, collection_id: int, country: str | None) -> str:
    """The lookup request for a show's latest episodes in the link's storefront.

    Args:
        base: the API base (``https://itunes.apple.com`` or the local stand-in).
        collection_id: the show's id.
        country: the link's storefront (two letters), or None for the US store.

    Returns:
        The URL to ask.
    """
    query = urlencode(
        {
            "id": collection_id,
            "entity": "podcastEpisode",
            "limit": LOOKUP_LIMIT,
            "country": (country or _DEFAULT_COUNTRY).lower(),
        }
    )
    return f"{base.rstrip('/')}/lookup?{query}"


def parse_lookup(content: bytes) -> LookupAnswer:
    """Read a lookup answer.

    Args:
        content: the answer's bytes (Apple serves it as ``text/javascript``).

    Returns:
        The show and episode records it holds (none, for an unknown show).

    Raises:
        EpisodeNotFoundError: the answer is not JSON.
        UnsafeDocumentError: it holds numbers out of range or nesting too deep to read.
    """
    try:
        payload = load_json(content, "Apple's lookup answer")
    except NotJsonError:
        raise EpisodeNotFoundError("Apple's lookup answered something that is not JSON") from None
    raw = payload.get("results") if isinstance(payload, dict) else None
    results = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
    show = next((item for item in results if item.get("wrapperType") == "track"), None)
    episodes = tuple(
        episode
        for item in results
        if item.get("wrapperType") == "podcastEpisode" and (episode := _episode(item)) is not None
    )
    name = text_or_none((show or {}).get("collectionName"))
    return LookupAnswer(
        has_show=show is not None,
        show=name or (episodes[0].show if episodes else None),
        feed_url=text_or_none((show or {}).get("feedUrl")),
        episodes=episodes,
    )


def _episode(item: dict[str, Any]) -> LookupEpisode | None:
    track_id = item.get("trackId")
    if not isinstance(track_id, int) or isinstance(track_id, bool) or track_id <= 0:
        return None
    millis = item.get("trackTimeMillis")
    seconds = (
        millis / 1000
        if isinstance(millis, int | float) and not isinstance(millis, bool) and millis > 0
        else None
    )
    return LookupEpisode(
        episode_id=track_id,
        title=text_or_none(item.get("trackName")),
        guid=text_or_none(item.get("episodeGuid")),
        audio_url=text_or_none(item.get("episodeUrl")),
        duration_seconds=seconds,
        published_at=iso_datetime(item.get("releaseDate")),
        feed_url=text_or_none(item.get("feedUrl")),
        show=text_or_none(item.get("collectionName")),
    )


@dataclass(frozen=True)
class _Cached:
    """An answer and how long it may be reused (the settings in force when it was stored)."""

    answer: LookupAnswer
    ttl_seconds: float


def _expiry(_key: str, cached: _Cached, now: float) -> float:
    return now + cached.ttl_seconds


class LookupCache:
    """Lookup answers by URL, bounded, each for the lifetime it was stored with.

    A ``cachetools.TLRUCache`` (least recently used go first once the expired are gone) behind
    a lock, since cachetools caches are not thread-safe. It is the time-aware variant of
    ``TTLCache`` because the lifetime is ``lookup_cache_seconds`` of the settings that stored an
    answer, not one fixed for the process.

    Args:
        max_entries: most answers held.
        timer: monotonic seconds (injectable, so tests can step past a lifetime).
    """

    def __init__(self, max_entries: int, *, timer: Callable[[], float] = time.monotonic) -> None:
        self._entries: TLRUCache[str, _Cached] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=timer
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> LookupAnswer | None:
        """The answer cached under ``key``, unless it expired."""
        with self._lock:
            cached = self._entries.get(key)
        return cached.answer if cached is not None else None

    def put(self, key: str, value: LookupAnswer, ttl_seconds: float) -> None:
        """Keep ``value`` for ``ttl_seconds`` (nothing when that is not positive)."""
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = _Cached(value, ttl_seconds)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)
