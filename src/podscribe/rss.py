"""Podcast RSS feeds: parsed safely, and searched for one episode.

A feed is untrusted input. Before feedparser sees it, the bytes are size-capped and parsed
once by defusedxml with DTDs, entity declarations and external references forbidden, so
billion-laughs bombs and external-entity tricks are refused (``unsafe_document``) rather
than expanded. Feeds that are merely malformed (undefined HTML entities, stray ``&``) are
common in the wild; they go on to feedparser's tolerant parser only when no DOCTYPE or
ENTITY declaration is present anywhere in the text.

:func:`find_entry` matches an episode by GUID first, then by enclosure URL, and only as a
last resort by normalised title and publication date; more than one candidate at any step is
an :class:`~podscribe.errors.AmbiguousEpisodeError`, never a guess.
"""

from __future__ import annotations

import calendar
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree
import feedparser

from podscribe.errors import (
    AmbiguousEpisodeError,
    EpisodeNotFoundError,
    TooLargeError,
    UnsafeDocumentError,
)

__all__ = ["Feed", "FeedEntry", "find_entry", "normalise_title", "parse_feed"]

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
# Apple's page and the feed may disagree on the day across time zones.
_DATE_TOLERANCE = timedelta(hours=36)


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, as far as matching and transcription need it.

    Attributes:
        guid: the item's ``<guid>`` (None when absent).
        title: the item title ("" when absent).
        audio_url: the enclosure URL (an audio/video one preferred); None without one.
        enclosure_type: the enclosure's declared type.
        duration_seconds: ``itunes:duration`` in seconds, when given and readable.
        published_at: ``pubDate`` in UTC, when given and readable.
    """

    guid: str | None
    title: str
    audio_url: str | None
    enclosure_type: str | None
    duration_seconds: float | None
    published_at: datetime | None


@dataclass(frozen=True)
class Feed:
    """A parsed feed: the show title and its items, in feed order."""

    title: str
    entries: tuple[FeedEntry, ...]


def parse_feed(content: bytes, *, max_bytes: int) -> Feed:
    """Parse RSS/Atom bytes safely.

    Args:
        content: the feed as fetched.
        max_bytes: the size cap (the fetcher already caps; this guards other callers).

    Returns:
        The show title and its entries.

    Raises:
        TooLargeError: more than ``max_bytes``.
        UnsafeDocumentError: a DTD, entity declaration or external reference, or no feed.
    """
    if len(content) > max_bytes:
        raise TooLargeError(f"feed larger than {max_bytes} bytes")
    _refuse_unsafe_xml(content)
    parsed = feedparser.parse(io.BytesIO(content), sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version") and not parsed.entries:
        raise UnsafeDocumentError("the document is not an RSS or Atom feed")
    entries = tuple(_entry(raw) for raw in parsed.entries)
    return Feed(title=str(parsed.feed.get("title", "")), entries=entries)


def _refuse_unsafe_xml(content: bytes) -> None:
    try:
        defusedxml.ElementTree.fromstring(
            content, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as error:
        raise UnsafeDocumentError(f"feed refused: {type(error).__name__}: {error}") from None
    except ParseError:
        # Malformed but possibly harmless: tolerated only with no declarations at all.
        if _DECLARATION.search(content):
            raise UnsafeDocumentError("feed refused: malformed XML with declarations") from None


def _entry(raw: Any) -> FeedEntry:
    audio_url, enclosure_type = _enclosure(raw)
    guid = raw.get("id") or None
    return FeedEntry(
        guid=str(guid).strip() if guid else None,
        title=str(raw.get("title", "")).strip(),
        audio_url=audio_url,
        enclosure_type=enclosure_type,
        duration_seconds=_duration(raw.get("itunes_duration")),
        published_at=_published(raw),
    )


def _enclosure(raw: Any) -> tuple[str | None, str | None]:
    candidates = [
        link for link in raw.get("links", []) if link.get("rel") == "enclosure" and link.get("href")
    ]
    for link in candidates:
        if str(link.get("type", "")).startswith(("audio/", "video/")):
            return str(link["href"]).strip(), str(link.get("type"))
    if candidates:
        first = candidates[0]
        return str(first["href"]).strip(), (str(first.get("type")) if first.get("type") else None)
    return None, None


def _duration(value: Any) -> float | None:
    """``itunes:duration`` is seconds, ``MM:SS`` or ``HH:MM:SS``."""
    if not value:
        return None
    try:
        parts = [float(part) for part in str(value).strip().split(":")]
    except ValueError:
        return None
    if not 1 <= len(parts) <= 3 or any(part < 0 for part in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _published(raw: Any) -> datetime | None:
    parsed = raw.get("published_parsed") or raw.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)


def normalise_title(title: str) -> str:
    """A title reduced to what survives re-publishing: case, punctuation, spacing, forms."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    kept = "".join(ch if ch.isalnum() else " " for ch in folded)
    return " ".join(kept.split())


def normalise_audio_url(url: str) -> str:
    """An enclosure URL without scheme, query or fragment, host lower-cased."""
    parts = urlsplit(url.strip())
    return f"{parts.netloc.lower()}{parts.path}"


def find_entry(
    feed: Feed,
    *,
    guid: str | None = None,
    audio_url: str | None = None,
    title: str | None = None,
    published_at: datetime | None = None,
) -> FeedEntry:
    """Find one episode in a feed.

    Args:
        feed: the parsed feed.
        guid: the episode GUID (Apple's ``episodeGuid``), tried first.
        audio_url: the audio URL Apple knows, tried second.
        title: the episode title, tried last, and only together with ``published_at``.
        published_at: the publication time (within a day and a half either way).

    Returns:
        The one matching entry.

    Raises:
        AmbiguousEpisodeError: more than one entry matches at the step that decided.
        EpisodeNotFoundError: nothing matches.
    """
    steps: list[tuple[str, Callable[[FeedEntry], bool]]] = []
    if guid:
        wanted_guid = guid.strip()
        steps.append(("GUID", lambda entry: entry.guid == wanted_guid))
    if audio_url:
        wanted_url = normalise_audio_url(audio_url)
        steps.append(
            (
                "enclosure URL",
                lambda entry: (
                    bool(entry.audio_url)
                    and normalise_audio_url(entry.audio_url or "") == wanted_url
                ),
            )
        )
    if title and published_at:
        wanted_title = normalise_title(title)
        when = published_at
        steps.append(
            (
                "title and date",
                lambda entry: (
                    normalise_title(entry.title) == wanted_title
                    and entry.published_at is not None
                    and abs(entry.published_at - when) <= _DATE_TOLERANCE
                ),
            )
        )
    for label, matches in steps:
        found = [entry for entry in feed.entries if matches(entry)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AmbiguousEpisodeError(
                f"{len(found)} episodes of {feed.title!r} share that {label}; refusing to guess"
            )
    if not steps:
        raise EpisodeNotFoundError("nothing to match the feed's episodes against")
    raise EpisodeNotFoundError(f"episode not found in the feed of {feed.title!r}")
