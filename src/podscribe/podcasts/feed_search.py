"""Finding one episode in a parsed feed.

:func:`find_entry` matches an episode by GUID first, then by enclosure URL, then by normalised
title and publication date. When several items share the deciding key, the other keys given
narrow them; items that are one episode listed twice count once. Candidates that still differ
are an :class:`~podscribe.errors.AmbiguousEpisodeError`, never a guess.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from podscribe.errors import AmbiguousEpisodeError, EpisodeNotFoundError
from podscribe.podcasts.feed import Feed, FeedEntry

__all__ = ["find_entry", "normalise_audio_url", "normalise_title"]

# Apple's page and the feed may disagree on the day across time zones.
_DATE_TOLERANCE = timedelta(hours=36)


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

    The first key (in the order below) that any item carries decides the candidates; when it
    names several, each other key given narrows them (a key that none of them carries is
    skipped: a stale page must not empty the set). Candidates that are one episode listed
    twice (same GUID, title, date and enclosure) count once.

    Args:
        feed: the parsed feed.
        guid: the episode GUID (Apple's ``episodeGuid``), tried first.
        audio_url: the audio URL Apple knows, tried second (the exact URL preferred over
            one that differs only in its query).
        title: the episode title, tried last, and only together with ``published_at``.
        published_at: the publication time (within a day and a half either way).

    Returns:
        The one matching entry.

    Raises:
        AmbiguousEpisodeError: several different episodes fit every key given.
        EpisodeNotFoundError: nothing matches.
    """
    keys = _keys(guid, audio_url, title, published_at)
    if not keys:
        raise EpisodeNotFoundError("nothing to match the feed's episodes against")
    for position, (label, matches) in enumerate(keys):
        found = matches(list(feed.entries))
        if not found:
            continue
        for _, narrower in keys[position + 1 :]:
            found = narrower(found) or found
        distinct = {_identity(entry) for entry in found}
        if len(distinct) == 1:
            return found[0]
        raise AmbiguousEpisodeError(
            f"{len(distinct)} different episodes of {feed.title!r} share that {label} "
            "and nothing else given tells them apart; refusing to guess"
        )
    raise EpisodeNotFoundError(f"episode not found in the feed of {feed.title!r}")


_Narrow = Callable[[list[FeedEntry]], list[FeedEntry]]


def _keys(
    guid: str | None, audio_url: str | None, title: str | None, published_at: datetime | None
) -> list[tuple[str, _Narrow]]:
    """The matchers for the keys given, strongest first."""
    keys: list[tuple[str, _Narrow]] = []
    if guid and guid.strip():
        wanted_guid = guid.strip()
        keys.append(("GUID", lambda entries: [e for e in entries if e.guid == wanted_guid]))
    if audio_url and audio_url.strip():
        exact, loose = _exact_audio_url(audio_url), normalise_audio_url(audio_url)

        def by_url(entries: list[FeedEntry]) -> list[FeedEntry]:
            near = [e for e in entries if e.audio_url and normalise_audio_url(e.audio_url) == loose]
            same = [e for e in near if _exact_audio_url(e.audio_url or "") == exact]
            return same or near

        keys.append(("enclosure URL", by_url))
    if title and published_at:
        wanted_title, when = normalise_title(title), published_at

        def by_title_and_date(entries: list[FeedEntry]) -> list[FeedEntry]:
            return [
                e
                for e in entries
                if e.published_at is not None
                and abs(e.published_at - when) <= _DATE_TOLERANCE
                and normalise_title(e.title) == wanted_title
            ]

        keys.append(("title and date", by_title_and_date))
    return keys


def _identity(entry: FeedEntry) -> tuple[object, ...]:
    """What makes two items the same episode (a feed listing one twice)."""
    audio = _exact_audio_url(entry.audio_url) if entry.audio_url else None
    return (entry.guid, normalise_title(entry.title), entry.published_at, audio)


def _exact_audio_url(url: str) -> str:
    parts = urlsplit(url.strip())
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.netloc.lower()}{parts.path}{query}"
