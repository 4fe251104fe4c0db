"""Apple's public episode page: what it says about one episode.

The iTunes lookup lists a show's latest 200 episodes only; for older ones the page
``podcasts.apple.com/<country>/podcast/id<show>?i=<episode>`` is the remaining public source.
It is HTML with JSON islands: schema.org ``PodcastEpisode`` JSON-LD and a
``serialized-server-data`` document whose episode objects carry ``streamUrl``/``assetUrl``.
Only those islands are read (stdlib :mod:`html.parser`, no scripts run, no regex over HTML),
as untrusted JSON: an island with absurd numbers or nesting is skipped like a broken one.
The page's own episode is the ``EpisodeLockup`` model of its share button (the shape yt-dlp
reads from the live site), or any object naming the episode's id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from podscribe.errors import UnsafeDocumentError
from podscribe.podcasts.untrusted_json import NotJsonError, load_json

_EPISODE_KEYS = frozenset({"streamUrl", "assetUrl", "episodeGuid"})
_SHARE_MODEL = "\x00share-model"  # marks the share button's model; Apple's data has no such key
_MAX_DURATION_SECONDS = 10 * 24 * 3600.0  # beyond any episode: a value not to be believed

__all__ = ["EpisodePage", "iso_datetime", "parse_episode_page", "text_or_none"]


@dataclass(frozen=True)
class EpisodePage:
    """What Apple's public episode page says about an episode (any field may be missing)."""

    title: str | None
    published_at: datetime | None
    audio_url: str | None
    guid: str | None
    duration_seconds: float | None


class _ScriptCollector(HTMLParser):
    """Collects the JSON islands of a page: JSON-LD and the serialized server data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.islands: list[str] = []
        self._inside = False
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        kind = (attributes.get("type") or "").lower()
        if tag == "script" and (
            kind in ("application/ld+json", "application/json")
            or attributes.get("id") == "serialized-server-data"
        ):
            self._inside, self._buffer = True, []

    def handle_data(self, data: str) -> None:
        if self._inside:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inside:
            self._inside = False
            self.islands.append("".join(self._buffer))


def parse_episode_page(content: bytes, episode_id: int) -> EpisodePage:
    """Read title, date, audio URL and GUID from Apple's episode page.

    The page carries schema.org ``PodcastEpisode`` JSON-LD and a ``serialized-server-data``
    JSON island whose episode objects hold ``streamUrl``/``assetUrl``; both are read, the
    object naming ``episode_id`` preferred.

    Args:
        content: the page's HTML (already size-capped by the fetcher).
        episode_id: the episode the page is about.

    Returns:
        What the page says; fields it does not say are None.
    """
    collector = _ScriptCollector()
    collector.feed(content.decode("utf-8", errors="replace"))
    collector.close()
    candidates: list[dict[str, Any]] = []
    for island in collector.islands:
        try:
            document = load_json(island.encode("utf-8", errors="replace"), "Apple's page")
        except (NotJsonError, UnsafeDocumentError):
            continue
        candidates.extend(_episode_objects(document, str(episode_id)))
    wanted = str(episode_id)
    candidates.sort(
        key=lambda item: (
            str(item.get("id", item.get("adamId", ""))) != wanted and not _is_share_model(item)
        )
    )
    title = published = audio = guid = None
    duration: float | None = None
    for item in candidates:
        media = item.get("associatedMedia")
        media_url = media.get("contentUrl") if isinstance(media, dict) else None
        title = title or text_or_none(item.get("title")) or text_or_none(item.get("name"))
        published = published or iso_datetime(item.get("releaseDate") or item.get("datePublished"))
        audio = audio or text_or_none(item.get("streamUrl")) or text_or_none(item.get("assetUrl"))
        audio = audio or text_or_none(media_url) or text_or_none(item.get("contentUrl"))
        guid = guid or text_or_none(item.get("guid")) or text_or_none(item.get("episodeGuid"))
        seconds = item.get("duration")
        if (
            duration is None
            and isinstance(seconds, int | float)
            and 0 < seconds <= _MAX_DURATION_SECONDS
            and math.isfinite(seconds)
        ):
            duration = float(seconds)
    return EpisodePage(title, published, audio, guid, duration)


def _episode_objects(node: Any, wanted: str, depth: int = 0) -> list[dict[str, Any]]:
    """Dicts that describe an episode, found anywhere in a JSON document (bounded depth)."""
    if depth > 32:
        return []
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        kind = node.get("@type")
        names_it = str(node.get("id", node.get("adamId", ""))) == wanted and "title" in node
        if kind == "PodcastEpisode" or names_it or _EPISODE_KEYS.intersection(node):
            found.append(node)
        if (share := _share_model(node)) is not None:
            found.append(share)
        for value in node.values():
            found.extend(_episode_objects(value, wanted, depth + 1))
    elif isinstance(node, list):
        for value in node:
            found.extend(_episode_objects(value, wanted, depth + 1))
    return found


def _share_model(node: dict[str, Any]) -> dict[str, Any] | None:
    """The share button's model, with the audio URL of its play action lifted into it."""
    model = node.get("model")
    if not (
        node.get("$kind") == "share"
        and node.get("modelType") == "EpisodeLockup"
        and isinstance(model, dict)
    ):
        return None
    action = model.get("playAction")
    offer = action.get("episodeOffer") if isinstance(action, dict) else None
    if not isinstance(offer, dict):
        offer = {}
    lifted = {key: offer[key] for key in ("streamUrl", "guid") if key in offer}
    return {**lifted, **model, _SHARE_MODEL: True}


def _is_share_model(item: dict[str, Any]) -> bool:
    return item.get(_SHARE_MODEL) is True


def text_or_none(value: Any) -> str | None:
    """A non-empty stripped string, or None for anything else."""
    return value.strip() or None if isinstance(value, str) else None


def iso_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones taken as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
