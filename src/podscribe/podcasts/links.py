"""Apple Podcasts episode links: every spelling Apple hands out, read into an :class:`EpisodeRef`.

Web, legacy iTunes and embed links, the app's ``podcasts://`` and ``itms-podcasts://``
schemes, and share links with tracking parameters all name a show id (``id<digits>``) and an
episode id (``?i=<digits>``); anything else is refused with a podscribe error that says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from podscribe.errors import EpisodeLinkError, NotAnEpisodeError, NotApplePodcastsError

__all__ = ["EpisodeRef", "parse_episode_url"]

_APPLE_HOSTS = frozenset(
    {
        "podcasts.apple.com",
        "www.podcasts.apple.com",
        "embed.podcasts.apple.com",
        "itunes.apple.com",
        "geo.itunes.apple.com",
    }
)
_SCHEMES = frozenset(
    {"https", "http", "podcasts", "itms-podcasts", "itms-podcastss", "itms", "itmss", "pcast"}
)
_SHOW_ID = re.compile(r"^id([0-9]{1,19})$")
_NUMBER = re.compile(r"^[0-9]{1,19}$")
_COUNTRY = re.compile(r"^[a-z]{2}$")
_MAX_LINK_LENGTH = 2048


@dataclass(frozen=True)
class EpisodeRef:
    """An Apple Podcasts episode: show (collection) id and episode (track) id.

    Attributes:
        collection_id: the show's id (``id<digits>`` in the link).
        episode_id: the episode's id (``?i=<digits>``).
        country: the storefront named in the link, if any (not part of identity).
    """

    collection_id: int
    episode_id: int
    country: str | None = field(default=None, compare=False)


def parse_episode_url(url: str) -> EpisodeRef:
    """Read an Apple Podcasts episode link.

    Args:
        url: a link as a user pasted it, e.g.
            ``https://podcasts.apple.com/us/podcast/some-show/id1535809341?i=1000651234567``.

    Returns:
        The show and episode ids.

    Raises:
        NotApplePodcastsError: not an Apple Podcasts link at all.
        NotAnEpisodeError: a show (or other page) link that names no episode.
        EpisodeLinkError: an Apple link whose ids are malformed or contradictory.
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text or len(text) > _MAX_LINK_LENGTH or any(ch.isspace() for ch in text):
        raise NotApplePodcastsError("expected one Apple Podcasts episode URL")
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise NotApplePodcastsError(f"not a valid URL: {url!r}") from None
    host = (parts.hostname or "").lower()
    if (
        parts.scheme.lower() not in _SCHEMES
        or host not in _APPLE_HOSTS
        or parts.username is not None
        or port not in (None, 80, 443)
    ):
        raise NotApplePodcastsError(f"not an Apple Podcasts link: {url!r}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if "podcast" not in segments:
        raise NotAnEpisodeError("the link does not name a podcast episode")
    show_ids = [match[1] for match in map(_SHOW_ID.match, segments) if match]
    episode_ids = parse_qs(parts.query, keep_blank_values=True).get("i", [])
    if not episode_ids:
        raise NotAnEpisodeError(
            "the link names a show, not an episode: open the episode and share its link"
        )
    if len(set(episode_ids)) != 1 or not _NUMBER.match(episode_ids[0]):
        raise EpisodeLinkError(f"malformed episode id in {url!r}")
    if len(set(show_ids)) != 1:
        raise EpisodeLinkError(f"the link does not carry one show id (id<digits>): {url!r}")
    country = segments[0].lower() if _COUNTRY.match(segments[0].lower()) else None
    collection_id, episode_id = int(show_ids[0]), int(episode_ids[0])
    if collection_id == 0 or episode_id == 0:
        raise EpisodeLinkError(f"zero is not an Apple id: {url!r}")
    return EpisodeRef(collection_id, episode_id, country)
