"""Apple Podcasts links, Episode round trips and the episode page reader."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from podscribe.errors import EpisodeLinkError, NotAnEpisodeError, NotApplePodcastsError
from podscribe.podcasts import Episode, EpisodeRef, parse_episode_url
from podscribe.podcasts.page import parse_episode_page

SHOW, EPISODE = 1535809341, 1000651234567

EPISODE_LINKS = [
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/gb/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/podcast/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}&uo=4",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?uo=4&i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?at=1001lSCh&ct=share&i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}&l=es-MX",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}&i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}/?i={EPISODE}",
    f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}#transcript",
    f"https://podcasts.apple.com/us/podcast/%E3%83%8B%E3%83%A5%E3%83%BC%E3%82%B9/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com/jp/podcast/ニュース/id{SHOW}?i={EPISODE}",
    f"http://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"HTTPS://Podcasts.Apple.com/US/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"https://podcasts.apple.com:443/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"  https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}\n",
    f"https://itunes.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}&mt=2",
    f"https://itunes.apple.com/podcast/id{SHOW}?i={EPISODE}",
    f"https://geo.itunes.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"https://embed.podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"podcasts://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"itms-podcasts://itunes.apple.com/us/podcast/the-daily/id{SHOW}?i={EPISODE}",
    f"itms-podcastss://podcasts.apple.com/podcast/id{SHOW}?i={EPISODE}",
]


@pytest.mark.parametrize("link", EPISODE_LINKS)
def test_every_form_of_episode_link_parses(link):
    assert parse_episode_url(link) == EpisodeRef(SHOW, EPISODE)


def test_the_storefront_is_kept_but_is_not_identity():
    ref = parse_episode_url(f"https://podcasts.apple.com/gb/podcast/x/id{SHOW}?i={EPISODE}")
    assert ref.country == "gb"
    assert (
        parse_episode_url(f"https://podcasts.apple.com/podcast/id{SHOW}?i={EPISODE}").country
        is None
    )
    assert hash(ref) == hash(EpisodeRef(SHOW, EPISODE))


@pytest.mark.parametrize(
    "link",
    [
        f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}",
        f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?uo=4",
        f"https://podcasts.apple.com/us/podcast/the-daily/id{SHOW}?mt=2&ls=1",
        f"https://itunes.apple.com/us/podcast/the-daily/id{SHOW}",
        f"podcasts://podcasts.apple.com/podcast/id{SHOW}",
        "https://podcasts.apple.com/us/channel/the-new-york-times/id6442463980",
        "https://podcasts.apple.com/us/browse",
        "https://podcasts.apple.com/",
    ],
)
def test_a_show_or_other_apple_page_is_not_an_episode(link):
    with pytest.raises(NotAnEpisodeError) as error:
        parse_episode_url(link)
    assert error.value.code == "not_an_episode"
    assert error.value.http_status == 422


@pytest.mark.parametrize(
    "link",
    [
        "",
        "   ",
        "not a url",
        f"https://open.spotify.com/episode/abc?i={EPISODE}",
        f"https://podcasts.apple.com.evil.example/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://evilpodcasts.apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://music.apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://user@podcasts.apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://podcasts.apple.com:8443/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://podcasts.apple.com:http/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"ftp://podcasts.apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"javascript://podcasts.apple.com/us/podcast/x/id{SHOW}?i={EPISODE}",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i={EPISODE} extra",
        "https://apple.co/3xYzAbC",
        "https://" + "a" * 3000,
    ],
)
def test_other_links_are_not_apple_podcasts(link):
    with pytest.raises(NotApplePodcastsError):
        parse_episode_url(link)


@pytest.mark.parametrize(
    "link",
    [
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=abc",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=1&i=2",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=-5",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=0",
        f"https://podcasts.apple.com/us/podcast/x/id{SHOW}?i=99999999999999999999",
        f"https://podcasts.apple.com/us/podcast/the-daily?i={EPISODE}",
        f"https://podcasts.apple.com/us/podcast/id1/id2?i={EPISODE}",
    ],
)
def test_malformed_ids_are_clear_errors(link):
    with pytest.raises(EpisodeLinkError) as error:
        parse_episode_url(link)
    assert error.value.code in {"invalid_episode_url", "not_an_episode"}
    assert error.value.message


def test_an_episode_survives_json():
    episode = Episode(
        collection_id=SHOW,
        episode_id=EPISODE,
        guid="abc-123",
        show="The Daily",
        title="Monday",
        audio_url="https://traffic.megaphone.fm/X.mp3",
        duration_seconds=1234.5,
        published_at=datetime(2024, 5, 6, 10, 0, tzinfo=UTC),
        feed_url="https://feeds.example.com/daily.xml",
    )
    data = json.loads(json.dumps(episode.to_dict()))
    assert data["published_at"] == "2024-05-06T10:00:00+00:00"
    assert Episode.from_dict(data) == episode
    bare = Episode(SHOW, EPISODE, None, "S", "T", "https://a/b.mp3", None, None, None)
    assert Episode.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare


PAGE = """<!DOCTYPE html><html><head>
<script name="schema:podcast-episode" type="application/ld+json">
{"@context":"http://schema.org","@type":"PodcastEpisode","name":"From JSON-LD",
 "datePublished":"2019-01-07","associatedMedia":{"@type":"MediaObject",
 "contentUrl":"https://cdn.example.com/ld.mp3"}}
</script></head><body>
<script type="application/json" id="serialized-server-data">
[{"data":{"shelves":[{"items":[
  {"id":"999","title":"Another episode","streamUrl":"https://cdn.example.com/other.mp3"},
  {"id":"1000","title":"Episode &amp; Title","releaseDate":"2019-01-07T06:00:00Z",
   "streamUrl":"https://cdn.example.com/ep.mp3","duration":1800,"guid":"g-1000"}
]}]}}]
</script></body></html>"""


def test_the_episode_page_prefers_the_object_naming_the_episode():
    page = parse_episode_page(PAGE.encode(), 1000)
    assert page.title == "Episode &amp; Title"
    assert page.audio_url == "https://cdn.example.com/ep.mp3"
    assert page.guid == "g-1000"
    assert page.published_at == datetime(2019, 1, 7, 6, tzinfo=UTC)
    assert page.duration_seconds == 1800.0


def test_json_ld_alone_is_enough():
    only_ld = PAGE.split("<body>", maxsplit=1)[0] + "</html>"
    page = parse_episode_page(only_ld.encode(), 1000)
    assert page.title == "From JSON-LD"
    assert page.audio_url == "https://cdn.example.com/ld.mp3"
    assert page.published_at == datetime(2019, 1, 7, tzinfo=UTC)
    assert page.guid is None


def test_a_page_without_data_says_nothing():
    page = parse_episode_page(b"<html><script>var x = {</script><p>hi</p></html>", 1)
    assert (page.title, page.audio_url, page.guid, page.published_at) == (None, None, None, None)
    broken = b'<script type="application/ld+json">{not json</script>'
    assert parse_episode_page(broken, 1).title is None
