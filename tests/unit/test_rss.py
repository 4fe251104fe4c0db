"""Feeds: safe parsing (bombs, entities, size) and matching (GUID, enclosure, title + date)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from podscribe.errors import (
    AmbiguousEpisodeError,
    EpisodeNotFoundError,
    TooLargeError,
    UnsafeDocumentError,
)
from podscribe.podcasts.feed import Feed, FeedEntry, parse_feed
from podscribe.podcasts.feed_search import find_entry, normalise_title

CAP = 1_000_000

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>The Loopback Hour</title>
<item><title>Episode 3: Recent</title><guid isPermaLink="false">guid-3</guid>
  <pubDate>Wed, 01 May 2024 09:00:00 +0000</pubDate>
  <enclosure url="https://dts.podtrac.com/redirect.mp3/cdn.example.com/ep3.mp3?x=1"
             length="123" type="audio/mpeg"/>
  <itunes:duration>1:02:03</itunes:duration></item>
<item><title>Episode 2 &#8212; Middle</title><guid>guid-2</guid>
  <pubDate>Mon, 01 Jan 2024 23:30:00 -0500</pubDate>
  <enclosure url="https://cdn.example.com/cover.jpg" type="image/jpeg"/>
  <enclosure url="https://cdn.example.com/ep2.m4a" type="audio/x-m4a"/>
  <itunes:duration>45:30</itunes:duration></item>
<item><title>Episode 1: The Beginning</title>
  <pubDate>Mon, 07 Jan 2019 06:00:00 GMT</pubDate>
  <enclosure url="https://cdn.example.com/ep1.mp3" type="audio/mpeg"/>
  <itunes:duration>1800</itunes:duration></item>
</channel></rss>"""


def test_a_feed_parses_into_entries():
    feed = parse_feed(FEED, max_bytes=CAP)
    assert feed.title == "The Loopback Hour"
    assert [entry.guid for entry in feed.entries] == ["guid-3", "guid-2", None]
    recent, middle, first = feed.entries
    assert recent.duration_seconds == 3723.0
    assert middle.duration_seconds == 2730.0
    assert first.duration_seconds == 1800.0
    assert middle.audio_url == "https://cdn.example.com/ep2.m4a"
    assert middle.enclosure_type == "audio/x-m4a"
    assert middle.title == "Episode 2 \u2014 Middle"
    assert middle.published_at == datetime(2024, 1, 2, 4, 30, tzinfo=UTC)
    assert first.published_at == datetime(2019, 1, 7, 6, tzinfo=UTC)


def test_matching_by_guid_then_enclosure_then_title_and_date():
    feed = parse_feed(FEED, max_bytes=CAP)
    assert find_entry(feed, guid="guid-2").title.startswith("Episode 2")
    by_url = find_entry(
        feed, audio_url="http://DTS.PODTRAC.COM/redirect.mp3/cdn.example.com/ep3.mp3?y=2"
    )
    assert by_url.guid == "guid-3"
    by_title = find_entry(
        feed,
        guid="unknown",
        audio_url="https://elsewhere.example.com/x.mp3",
        title="episode 1 - the beginning",
        published_at=datetime(2019, 1, 7, 20, tzinfo=UTC),
    )
    assert by_title.audio_url == "https://cdn.example.com/ep1.mp3"


def test_title_alone_is_never_enough():
    feed = parse_feed(FEED, max_bytes=CAP)
    with pytest.raises(EpisodeNotFoundError):
        find_entry(feed, title="Episode 1: The Beginning")
    with pytest.raises(EpisodeNotFoundError):
        find_entry(
            feed,
            title="Episode 1: The Beginning",
            published_at=datetime(2019, 1, 10, tzinfo=UTC),
        )
    with pytest.raises(EpisodeNotFoundError):
        find_entry(feed)


def _entry(guid: str | None, title: str, url: str) -> FeedEntry:
    return FeedEntry(guid, title, url, "audio/mpeg", None, datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("entries", "query"),
    [
        (
            [_entry("dup", "A", "https://x/a.mp3"), _entry("dup", "B", "https://x/b.mp3")],
            {"guid": "dup"},
        ),
        (
            [_entry("1", "A", "https://x/same.mp3"), _entry("2", "B", "https://x/same.mp3")],
            {"audio_url": "https://x/same.mp3"},
        ),
        (
            [_entry("1", "Rerun!", "https://x/a.mp3"), _entry("2", "rerun", "https://x/b.mp3")],
            {"title": "RERUN", "published_at": datetime(2024, 1, 1, 12, tzinfo=UTC)},
        ),
    ],
    ids=["guid", "enclosure", "title-and-date"],
)
def test_ambiguity_is_an_error(entries, query):
    with pytest.raises(AmbiguousEpisodeError, match="refusing to guess"):
        find_entry(Feed("Show", tuple(entries)), **query)


def test_a_unique_guid_decides_even_when_titles_repeat():
    feed = Feed("Show", (_entry("1", "Rerun", "https://x/a"), _entry("2", "Rerun", "https://x/b")))
    assert find_entry(feed, guid="2", title="Rerun", published_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert find_entry(feed, guid="2").audio_url == "https://x/b"


def test_titles_normalise_case_punctuation_and_width():
    assert normalise_title("  \uff25pisode 1:  The\u2014Beginning! ") == "episode 1 the beginning"


BOMBS = {
    "billion-laughs": b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<rss><channel><title>&lol2;</title></channel></rss>""",
    "quadratic-blowup": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
    + b"x" * 5000
    + b'">]><rss><channel><title>'
    + b"&a;" * 200
    + b"</title></channel></rss>",
    "external-entity": b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss><channel><title>&xxe;</title></channel></rss>""",
    "external-parameter-entity": b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://169.254.169.254/x.dtd"> %remote;]>
<rss><channel><title>t</title></channel></rss>""",
    "external-dtd": b"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "http://169.254.169.254/rss.dtd">
<rss><channel><title>t</title></channel></rss>""",
    "doctype-in-malformed-feed": b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY x "y">]><rss><channel><title>&x; & broken</title></rss>""",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_dtds_entities_and_bombs_are_refused(name):
    with pytest.raises(UnsafeDocumentError) as refused:
        parse_feed(BOMBS[name], max_bytes=CAP)
    assert refused.value.code == "unsafe_document"


def test_a_merely_malformed_feed_is_tolerated():
    sloppy = FEED.replace(b"Episode 3: Recent", b"Episode 3 &nbsp;Recent & more")
    feed = parse_feed(sloppy, max_bytes=CAP)
    assert len(feed.entries) == 3


def test_the_size_cap_holds():
    with pytest.raises(TooLargeError):
        parse_feed(FEED, max_bytes=len(FEED) - 1)


@pytest.mark.parametrize(
    "document", [b"<html><body>Not a feed</body></html>", b'{"items": []}', b""]
)
def test_a_document_that_is_not_a_feed_is_refused(document):
    with pytest.raises(UnsafeDocumentError, match="not an RSS or Atom feed"):
        parse_feed(document, max_bytes=CAP)


SHARED = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_shared_guid_is_narrowed_by_the_other_keys():
    """Real feeds (castfire) give one GUID to different episodes; the audio URL or the title
    and date tell them apart."""
    feed = Feed(
        "Show",
        (
            FeedEntry("dup", "A", "https://x/a.mp3", "audio/mpeg", None, SHARED),
            FeedEntry("dup", "B", "https://x/b.mp3", "audio/mpeg", None, SHARED),
        ),
    )
    assert find_entry(feed, guid="dup", audio_url="https://x/b.mp3").title == "B"
    assert find_entry(feed, guid="dup", title="a", published_at=SHARED).title == "A"
    # A key that fits none of the candidates (a stale page) is skipped, not fatal.
    assert (
        find_entry(feed, guid="dup", audio_url="https://y/old.mp3", title="B", published_at=SHARED)
    ).title == "B"
    with pytest.raises(AmbiguousEpisodeError, match="2 different episodes"):
        find_entry(feed, guid="dup", audio_url="https://y/old.mp3")


def test_one_episode_listed_twice_is_one_episode():
    twice = FeedEntry("g", "Same", "https://x/a.mp3", "audio/mpeg", None, SHARED)
    feed = Feed("Show", (twice, twice))
    assert find_entry(feed, guid="g") == twice
    assert find_entry(feed, audio_url="https://x/a.mp3") == twice
    assert find_entry(feed, title="same", published_at=SHARED) == twice


def test_the_exact_enclosure_url_beats_one_differing_in_its_query():
    feed = Feed(
        "Show",
        (
            FeedEntry(None, "One", "https://x/play.mp3?id=1", "audio/mpeg", None, SHARED),
            FeedEntry(None, "Two", "https://x/play.mp3?id=2", "audio/mpeg", None, SHARED),
        ),
    )
    assert find_entry(feed, audio_url="https://x/play.mp3?id=2").title == "Two"
    with pytest.raises(AmbiguousEpisodeError):
        find_entry(feed, audio_url="https://x/play.mp3?id=3")


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "NaN:00", "1:inf:00", "999999999"])
def test_a_duration_that_is_no_length_is_unknown(value):
    """Found by tests/unit/test_fuzz_parsers.py: float() read these as NaN, inf or absurd."""
    document = FEED.replace(b"<itunes:duration>1800", f"<itunes:duration>{value}".encode())
    assert parse_feed(document, max_bytes=CAP).entries[2].duration_seconds is None


@pytest.mark.parametrize(
    "reference", ["&#99999999;", "&#x110000;", "&#xD800;", "&#" + "9" * 5000 + ";"]
)
def test_a_malformed_feed_naming_no_character_still_parses(reference):
    """Found by tests/unit/test_fuzz_parsers.py: feedparser raised ValueError (internal error)."""
    document = f"<rss><channel><item><guid>g{reference}</guid><x>&</x></item></channel></rss>"
    feed = parse_feed(document.encode(), max_bytes=CAP)
    assert [entry.guid for entry in feed.entries] == ["g\ufffd"]
