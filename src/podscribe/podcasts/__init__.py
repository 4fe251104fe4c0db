"""Podcasts: from an Apple Podcasts link to the episode's audio URL.

- :mod:`podscribe.podcasts.links`: parsing an Apple Podcasts episode link (``EpisodeRef``).
- :mod:`podscribe.podcasts.resolution`: ``resolve_episode``, lookup first, page and feed after.
- :mod:`podscribe.podcasts.lookup`: the iTunes lookup API's answers.
- :mod:`podscribe.podcasts.page`: the episode page's embedded data.
- :mod:`podscribe.podcasts.feed`: RSS and Atom feeds, parsed within bounds.
- :mod:`podscribe.podcasts.feed_search`: finding one episode in a feed (``find_entry``).
- :mod:`podscribe.podcasts.feed_text`: a feed's bytes to text, DTDs refused.
- :mod:`podscribe.podcasts.untrusted_json`: JSON from strangers, with bounded numbers and depth.
"""

from podscribe.podcasts.feed import Feed, FeedEntry, parse_feed
from podscribe.podcasts.feed_search import find_entry
from podscribe.podcasts.links import EpisodeRef, parse_episode_url
from podscribe.podcasts.resolution import Episode, clear_lookup_cache, resolve_episode

__all__ = [
    "Episode",
    "EpisodeRef",
    "Feed",
    "FeedEntry",
    "clear_lookup_cache",
    "find_entry",
    "parse_episode_url",
    "parse_feed",
    "resolve_episode",
]
