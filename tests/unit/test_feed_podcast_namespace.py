"""Feeds' Podcasting 2.0 tags: ``<podcast:transcript>`` and ``<podcast:person>``, bounded.

Both parsing paths read them alike: the well-formed ``iterparse`` one and the tolerant one
for malformed feeds (an undefined entity sends a feed there).
"""

from __future__ import annotations

import pytest

from podscribe.podcasts import Episode
from podscribe.podcasts.feed import parse_feed
from podscribe.podcasts.podcast_namespace import (
    MAX_PERSONS,
    MAX_TRANSCRIPT_REFS,
    Person,
    PublisherTranscriptRef,
)

CAP = 1_000_000
NS = "https://podcastindex.org/namespace/1.0"


def feed(
    items: str, *, channel: str = "", title: str = "The Show", prefix: str = "podcast"
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:{prefix}="{NS}">'
        f"<channel><title>{title}</title>{channel}{items}</channel></rss>"
    ).encode()


ITEM = (
    "<item><title>One</title><guid>g1</guid>"
    '<enclosure url="https://cdn.example.com/1.mp3" type="audio/mpeg"/>'
    '<podcast:transcript url="https://cdn.example.com/1.vtt" type="text/vtt" language="en-US" '
    'rel="captions"/>'
    '<podcast:transcript url="https://cdn.example.com/1.json" type="application/json"/>'
    '<podcast:person role="Guest" group="cast" href="https://ann.example.com">Ann  Lee'
    "</podcast:person>"
    "<podcast:person>Bob</podcast:person></item>"
    "<item><title>Two</title><guid>g2</guid></item>"
)
CHANNEL = '<podcast:person role="host" img="https://cdn.example.com/c.jpg">Cass</podcast:person>'

EXPECTED_TRANSCRIPTS = (
    PublisherTranscriptRef("https://cdn.example.com/1.vtt", "text/vtt", "en-us", "captions"),
    PublisherTranscriptRef("https://cdn.example.com/1.json", "application/json"),
)
EXPECTED_PERSONS = (
    Person("Ann Lee", role="guest", group="cast", href="https://ann.example.com"),
    Person("Bob"),
)
CHANNEL_PERSONS = (Person("Cass", img="https://cdn.example.com/c.jpg"),)


@pytest.mark.parametrize("title", ["The Show", "The Show &nbsp;"], ids=["well-formed", "tolerant"])
def test_transcripts_and_persons_are_read_with_the_channels_cast_as_the_fallback(
    title: str,
) -> None:
    parsed = parse_feed(feed(ITEM, channel=CHANNEL, title=title), max_bytes=CAP)

    first, second = parsed.entries
    assert first.transcripts == EXPECTED_TRANSCRIPTS
    assert first.persons == EXPECTED_PERSONS
    assert second.transcripts == ()
    assert second.persons == CHANNEL_PERSONS


@pytest.mark.parametrize("title", ["S", "S &nbsp;"], ids=["well-formed", "tolerant"])
def test_another_prefix_for_the_namespace_is_the_same_tag(title: str) -> None:
    items = ITEM.replace("podcast:", "p20:")
    parsed = parse_feed(feed(items, prefix="p20", title=title), max_bytes=CAP)
    assert parsed.entries[0].transcripts == EXPECTED_TRANSCRIPTS


@pytest.mark.parametrize("title", ["S", "S &nbsp;"], ids=["well-formed", "tolerant"])
def test_the_tags_are_bounded_and_unusable_ones_dropped(title: str) -> None:
    many = "".join(
        f'<podcast:transcript url="https://cdn.example.com/{n}.vtt" type="text/vtt"/>'
        for n in range(50)
    )
    crowd = "".join(f"<podcast:person>Person {n}</podcast:person>" for n in range(50))
    unusable = (
        '<podcast:transcript url="file:///etc/passwd" type="text/vtt"/>'
        '<podcast:transcript url="https://cdn.example.com/no-type.vtt"/>'
        f'<podcast:transcript url="https://x.example.com/{"a" * 5000}" type="text/vtt"/>'
        "<podcast:person>   </podcast:person>"
        f"<podcast:person>{'N' * 5000}</podcast:person>"
    )
    item = f"<item><title>T</title>{unusable}{many}{crowd}</item>"
    [entry] = parse_feed(feed(item, title=title), max_bytes=CAP).entries
    assert len(entry.transcripts) <= MAX_TRANSCRIPT_REFS
    assert all(ref.url.startswith("https://cdn.example.com/") for ref in entry.transcripts)
    assert len(entry.persons) <= MAX_PERSONS
    assert all(len(person.name) <= 200 for person in entry.persons)


def test_an_item_level_tag_outside_the_namespace_is_not_a_transcript() -> None:
    item = (
        '<item><title>T</title><other:transcript xmlns:other="https://example.com/ns" '
        'url="https://cdn.example.com/t.vtt" type="text/vtt"/></item>'
    )
    [entry] = parse_feed(feed(item), max_bytes=CAP).entries
    assert entry.transcripts == ()


def test_an_episode_carries_them_through_its_dict_and_old_rows_have_none() -> None:
    episode = Episode(
        1, 2, "g", "Show", "T", "https://cdn.example.com/1.mp3", 60.0, None, None,
        transcripts=EXPECTED_TRANSCRIPTS, persons=EXPECTED_PERSONS,
    )  # fmt: skip
    assert Episode.from_dict(episode.to_dict()) == episode
    old = episode.to_dict()
    del old["transcripts"], old["persons"]
    assert Episode.from_dict(old).transcripts == ()
    assert Episode.from_dict(old).persons == ()
