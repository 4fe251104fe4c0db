"""Real links, feeds and lookup answers against the answers a correct resolver gives.

Every link of ``../shared/data/realworld/manifest.json`` is parsed or refused as it says; every
item of every feed is read as its ``expected/*.items.json`` says and found again by each of its
keys; the manifest's chosen episodes are matched by GUID, enclosure, title + date and all keys
with the outcome it derived; every lookup answer is read into the episodes it lists.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from podscribe.errors import AmbiguousEpisodeError, PodscribeError
from podscribe.podcasts import parse_episode_url
from podscribe.podcasts.feed import Feed, parse_feed
from podscribe.podcasts.feed_search import find_entry
from podscribe.podcasts.lookup import parse_lookup
from tests.fakes.realworld import expected_items, manifest, read_bytes, when

CAP = 10_485_760
LINKS = manifest()["urls"]
FEEDS = manifest()["feeds"]
LOOKUPS = manifest()["lookups"]


@pytest.mark.parametrize("link", LINKS, ids=[link["id"] for link in LINKS])
def test_every_real_link_is_parsed_or_refused_as_expected(link: dict[str, Any]) -> None:
    expected = link["expected"]
    if "refuse" in expected:
        with pytest.raises(PodscribeError) as refused:
            parse_episode_url(link["url"])
        assert type(refused.value).__name__ in expected["refuse"]
        return
    ref = parse_episode_url(link["url"])
    assert [ref.collection_id, ref.episode_id] == expected["ids"]
    assert ref.country == expected["country"]


_FEEDS: dict[str, Feed] = {}


def _feed(entry: dict[str, Any]) -> Feed:
    if entry["file"] not in _FEEDS:
        _FEEDS[entry["file"]] = parse_feed(read_bytes(entry["file"]), max_bytes=CAP)
    return _FEEDS[entry["file"]]


@pytest.mark.parametrize("feed", FEEDS, ids=[feed["id"] for feed in FEEDS])
def test_every_item_of_every_real_feed_reads_as_expected(feed: dict[str, Any]) -> None:
    items = expected_items(feed)
    parsed = _feed(feed)
    assert len(parsed.entries) == feed["expected"]["item_count"] == len(items)
    for index, (want, got) in enumerate(zip(items, parsed.entries, strict=True)):
        assert (got.guid, got.title, got.audio_url, got.published_at) == (
            want["guid"],
            want["title"],
            want["audio_url"],
            when(want["published_at"]),
        ), f"item {index}"


@pytest.mark.parametrize("feed", FEEDS, ids=[feed["id"] for feed in FEEDS])
def test_every_item_is_found_again_by_each_of_its_keys(feed: dict[str, Any]) -> None:
    """GUID, enclosure, title + date, all keys: the item, or ambiguity only where it is real."""
    items = expected_items(feed)
    parsed = _feed(feed)

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all(a[key] == b[key] for key in ("guid", "title", "audio_url", "published_at"))

    by_guid = Counter(item["guid"] for item in items)
    for index, item in enumerate(items):
        published = when(item["published_at"])
        everything = find_entry(
            parsed,
            guid=item["guid"],
            audio_url=item["audio_url"],
            title=item["title"],
            published_at=published,
        )
        assert everything.audio_url == item["audio_url"], f"item {index}, all keys"
        if item["guid"] is not None:
            twins = [other for other in items if other["guid"] == item["guid"]]
            if all(same(twin, item) for twin in twins):
                assert find_entry(parsed, guid=item["guid"]).audio_url == item["audio_url"]
            else:
                assert by_guid[item["guid"]] > 1
                with pytest.raises(AmbiguousEpisodeError):
                    find_entry(parsed, guid=item["guid"])


CHECK_KEYS = ("guid", "audio_url", "title_date", "all_keys")
CHOSEN = [
    (feed, episode, check)
    for feed in FEEDS
    for episode in feed["expected"]["episodes"]
    for check in CHECK_KEYS
    if check in episode["checks"]
]


@pytest.mark.parametrize(
    ("feed", "episode", "check"),
    CHOSEN,
    ids=[f"{feed['id']}#{episode['item_index']}:{check}" for feed, episode, check in CHOSEN],
)
def test_chosen_episodes_match_as_the_manifest_says(
    feed: dict[str, Any], episode: dict[str, Any], check: str
) -> None:
    published = when(episode["published_at"])
    keys: dict[str, Any] = {
        "guid": {"guid": episode["guid"]},
        "audio_url": {"audio_url": episode["audio_url"]},
        "title_date": {"title": episode["title"], "published_at": published},
        "all_keys": {
            "guid": episode["guid"],
            "audio_url": episode["audio_url"],
            "title": episode["title"],
            "published_at": published,
        },
    }[check]
    expected = episode["checks"][check]
    if "ambiguous" in expected:
        with pytest.raises(AmbiguousEpisodeError, match="refusing to guess"):
            find_entry(_feed(feed), **keys)
        return
    # "ambiguity_tolerated" marks one episode listed twice: a resolver may refuse, podscribe
    # counts identical items once and must find it.
    assert find_entry(_feed(feed), **keys).audio_url == expected["audio_url"]


@pytest.mark.parametrize("lookup", LOOKUPS, ids=[lookup["id"] for lookup in LOOKUPS])
def test_every_real_lookup_answer_is_read(lookup: dict[str, Any]) -> None:
    expected = lookup["expected"]
    answer = parse_lookup(read_bytes(lookup["file"]))
    assert answer.has_show is expected["has_show_record"]
    assert len(answer.episodes) == expected["episode_count"]
    assert answer.episode(expected["absent_episode_id"]) is None
    for want in expected["episodes"]:
        got = answer.episode(want["episode_id"])
        assert got is not None
        assert (got.audio_url, got.title, got.guid, got.duration_seconds, got.published_at) == (
            want["audio_url"],
            want["title"],
            want["guid"],
            want["duration_seconds"],
            when(want["published_at"]),
        )
        assert answer.show == want["show"]
        assert (answer.feed_url or got.feed_url) == want["feed_url"]
