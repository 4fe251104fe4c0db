"""Episode resolution end to end against a loopback Apple stand-in: lookup, page, feed, audio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.loopback_server import Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import (
    AmbiguousEpisodeError,
    DownloadRefusedError,
    EpisodeNotFoundError,
    FetchFailedError,
    NotAnEpisodeError,
    UnsafeDocumentError,
    UpstreamThrottledError,
)
from podscribe.podcasts import (
    Episode,
    EpisodeRef,
    clear_lookup_cache,
    parse_episode_url,
    resolve_episode,
)
from podscribe.settings import Settings, load_settings

SHOW = FakeShow()
RECENT = FakeEpisode(1000000003, "Episode 3: Recent", guid="guid-3")
OLD = FakeEpisode(
    1000000001,
    "Episode 1: The Beginning",
    guid="guid-1",
    published_at=datetime(2019, 1, 7, 6, tzinfo=UTC),
    in_lookup=False,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_lookup_cache()
    yield
    clear_lookup_cache()


def serve(*episodes: FakeEpisode) -> FakeApplePodcasts:
    return FakeApplePodcasts(SHOW, list(episodes))


def settings_for(apple: FakeApplePodcasts, **overrides: object) -> Settings:
    return load_settings(env="local", **apple.settings_overrides(), **overrides)


def resolve(apple: FakeApplePodcasts, episode: FakeEpisode, **overrides: object) -> Episode:
    ref = EpisodeRef(SHOW.collection_id, episode.episode_id)
    return resolve_episode(ref, settings_for(apple, **overrides))


def test_a_recent_episode_comes_from_the_lookup():
    with serve(RECENT, OLD) as apple:
        episode = resolve(apple, RECENT)
        lookup = apple.requests_to("/lookup")
        assert [(r.param("id"), r.param("entity"), r.param("limit")) for r in lookup] == [
            (str(SHOW.collection_id), "podcastEpisode", "200")
        ]
        assert apple.requests_to("/feeds") == []
        assert episode == Episode(
            collection_id=SHOW.collection_id,
            episode_id=RECENT.episode_id,
            guid="guid-3",
            show=SHOW.name,
            title=RECENT.title,
            audio_url=apple.audio_url(RECENT),
            duration_seconds=1800.0,
            published_at=RECENT.published_at,
            feed_url=apple.feed_url,
        )
        assert Episode.from_dict(json.loads(json.dumps(episode.to_dict()))) == episode


def test_an_episode_only_in_the_feed_is_matched_by_the_audio_url_on_apples_page():
    with serve(RECENT, OLD) as apple:
        episode = resolve(apple, OLD)
        assert apple.requests_to(f"/us/podcast/id{SHOW.collection_id}")[0].param("i") == str(
            OLD.episode_id
        )
        assert len(apple.requests_to("/feeds")) == 1
        assert episode.guid == "guid-1"
        assert episode.title == OLD.title
        assert episode.audio_url == apple.audio_url(OLD)
        assert episode.published_at == OLD.published_at
        assert episode.duration_seconds == 1800.0
        assert episode.show == SHOW.name


def test_the_guid_wins_over_a_misleading_title():
    by_guid = FakeEpisode(
        1000000001, "Ep. 1", guid="guid-1", in_lookup=False, page_guid=True, page_audio=False
    )
    twin = FakeEpisode(1000000002, "Ep. 1", guid="guid-2", in_lookup=False)
    with serve(RECENT, twin, by_guid) as apple:
        assert resolve(apple, by_guid).audio_url == apple.audio_url(by_guid)


def test_title_and_date_are_the_last_resort():
    renamed = FakeEpisode(
        1000000001,
        "Episode 1 — The Beginning!",
        guid=None,
        in_lookup=False,
        page_audio=False,
        page_title="episode 1 the beginning",
    )
    with serve(RECENT, renamed) as apple:
        episode = resolve(apple, renamed)
        assert episode.audio_url == apple.audio_url(renamed)
        assert episode.guid is None


def test_two_candidates_are_an_error_not_a_guess():
    first = FakeEpisode(1000000001, "Rerun", in_lookup=False, page_audio=False)
    second = FakeEpisode(1000000002, "Rerun", in_lookup=False, page_audio=False)
    with serve(RECENT, first, second) as apple, pytest.raises(AmbiguousEpisodeError) as error:
        resolve(apple, first)
    assert error.value.code == "episode_ambiguous"


@pytest.mark.parametrize(
    "missing",
    [
        FakeEpisode(1000000001, "Gone", in_lookup=False, page=False),
        FakeEpisode(1000000001, "Unlisted", in_lookup=False, in_feed=False),
    ],
    ids=["no-page", "not-in-feed"],
)
def test_an_episode_apple_and_the_feed_do_not_know_is_not_found(missing):
    with serve(RECENT, missing) as apple, pytest.raises(EpisodeNotFoundError):
        resolve(apple, missing)


def test_an_unknown_show_is_not_found():
    with serve(RECENT) as apple, pytest.raises(EpisodeNotFoundError, match="no show"):
        resolve_episode(EpisodeRef(42, 1), settings_for(apple))


def test_lookups_are_cached():
    with serve(RECENT, OLD) as apple:
        settings = settings_for(apple)
        with SafeFetcher(settings) as fetcher:
            for _ in range(3):
                resolve_episode(
                    EpisodeRef(SHOW.collection_id, RECENT.episode_id), settings, fetcher=fetcher
                )
        assert len(apple.requests_to("/lookup")) == 1
        resolve(apple, RECENT, lookup_cache_seconds=0)
        resolve(apple, RECENT, lookup_cache_seconds=0)
        assert len(apple.requests_to("/lookup")) == 3


def test_throttling_and_server_errors_are_retried():
    with serve(RECENT) as apple:
        apple.lookup_failures = [
            Reply(status=429, body=b"slow down", headers={"Retry-After": "0"}),
            Reply(status=503, body=b"busy"),
        ]
        assert resolve(apple, RECENT).episode_id == RECENT.episode_id
        assert len(apple.requests_to("/lookup")) == 3


def test_persistent_server_errors_surface_as_transient_failures():
    with serve(RECENT) as apple:
        apple.lookup_failures = [Reply(status=502, body=b"bad gateway") for _ in range(4)]
        with pytest.raises(FetchFailedError) as error:
            resolve(apple, RECENT)
        assert error.value.transient
        assert len(apple.requests_to("/lookup")) == 4


def test_retries_are_bounded():
    """Four attempts, then the transient error surfaces for the job to retry later."""
    with serve(RECENT) as apple:
        apple.lookup_failures = [
            Reply(status=429, body=b"no", headers={"Retry-After": "0"}) for _ in range(10)
        ]
        with pytest.raises(UpstreamThrottledError) as error:
            resolve(apple, RECENT)
        assert error.value.transient
        assert len(apple.requests_to("/lookup")) == 4


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol4;</title>
<item><title>Episode 1: The Beginning</title><guid>guid-1</guid></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&secret;</title>
<item><title>Episode 1: The Beginning</title><guid>guid-1</guid></item></channel></rss>"""


@pytest.mark.parametrize("feed", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["bomb", "xxe"])
def test_a_hostile_feed_is_refused(feed):
    with serve(RECENT, OLD) as apple:
        apple.feed_override = Reply(body=feed, content_type="application/rss+xml")
        with pytest.raises(UnsafeDocumentError) as refused:
            resolve(apple, OLD)
        assert refused.value.code == "unsafe_document"


def test_a_feed_redirecting_to_the_metadata_server_is_refused():
    with serve(RECENT, OLD) as apple:
        apple.feed_override = Reply(
            status=302, headers={"Location": "http://169.254.169.254/computeMetadata/v1/"}
        )
        with pytest.raises(DownloadRefusedError, match="link-local"):
            resolve(apple, OLD)


def test_resolved_audio_downloads_through_a_tracking_redirect(tmp_path):
    with serve(RECENT) as apple:
        apple.server.redirect("/track/ep3", apple.audio_url(RECENT))
        tracked = FakeEpisode(
            RECENT.episode_id, RECENT.title, guid="guid-3", audio_url=apple.server.url("/track/ep3")
        )
        apple.episodes = [tracked]
        settings = settings_for(apple)
        with SafeFetcher(settings) as fetcher:
            episode = resolve_episode(
                EpisodeRef(SHOW.collection_id, RECENT.episode_id), settings, fetcher=fetcher
            )
            audio = fetcher.download_audio(episode.audio_url, tmp_path / "episode.mp3")
        assert episode.audio_url.endswith("/track/ep3")
        assert audio.final_url == apple.audio_url(RECENT)
        assert audio.path.read_bytes() == RECENT.audio
        assert audio.audio_format == "mp3"


def test_a_show_link_with_no_episode_is_refused_before_any_request():
    with serve(RECENT) as apple:
        show_link = apple.episode_link(RECENT).split("?")[0]
        with pytest.raises(NotAnEpisodeError, match="names a show, not an episode"):
            parse_episode_url(show_link)
        assert parse_episode_url(apple.episode_link(RECENT)).episode_id == RECENT.episode_id
        assert apple.server.requests == []
