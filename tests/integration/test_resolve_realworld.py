"""resolve_episode on loopback against real lookup answers and real feeds (read from ../shared).

The lookup answers are served byte for byte; for older episodes the lookup's show record and
Apple's episode page are minimal stand-ins (the page in the shape yt-dlp reads from the live
site) in front of the real feed files, as ``resolve_scenarios`` in the manifest describes.
Nothing leaves 127.0.0.1: every answer that names a real host is one resolution never fetches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_emulators.fixtures import ID3_STUB, FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import EpisodeNotFoundError, TooManyRedirectsError, UnsafeDocumentError
from podscribe.podcasts import EpisodeRef, clear_lookup_cache, parse_episode_url, resolve_episode
from podscribe.settings import Settings, load_settings
from tests.fakes.realworld import expected_items, manifest, read_bytes, when

LOOKUPS = manifest()["lookups"]
SCENARIOS = manifest()["resolve_scenarios"]
OLDER = SCENARIOS["older_episode_via_page_and_feed"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_lookup_cache()
    yield
    clear_lookup_cache()


def _settings(server: FixtureServer) -> Settings:
    return load_settings(
        env="local",
        itunes_api_base=server.base_url,
        apple_web_base=server.base_url,
        ssrf_allow=[server.host_port],
    )


@pytest.mark.parametrize("lookup", LOOKUPS, ids=[lookup["id"] for lookup in LOOKUPS])
def test_listed_episodes_resolve_from_real_lookup_answers(lookup: dict[str, Any]) -> None:
    expected = lookup["expected"]
    answer = Reply(body=read_bytes(lookup["file"]), content_type="text/javascript; charset=utf-8")
    with FixtureServer() as server:
        server.route("/lookup", answer)
        settings = _settings(server)
        for want in expected["episodes"]:
            episode = resolve_episode(parse_episode_url(want["track_view_url"]), settings)
            assert (episode.collection_id, episode.episode_id) == (
                expected["collection_id"],
                want["episode_id"],
            )
            assert episode.audio_url == want["audio_url"]
            assert (episode.title, episode.guid, episode.show) == (
                want["title"],
                want["guid"],
                want["show"],
            )
            assert episode.duration_seconds == want["duration_seconds"]
            assert episode.published_at == when(want["published_at"])
            assert episode.feed_url == want["feed_url"]
        absent = EpisodeRef(expected["collection_id"], expected["absent_episode_id"], "us")
        with pytest.raises(EpisodeNotFoundError):
            resolve_episode(absent, settings)  # the stand-in has no page: a 404, no feed fetch
        lookups = [request for request in server.requests if request.path == "/lookup"]
        assert {request.param("country") for request in lookups} == {"us"}


def _page(episode_id: int, item: dict[str, Any], *, with_guid: bool) -> bytes:
    """Apple's episode page as yt-dlp reads it: the share button's EpisodeLockup model."""
    offer: dict[str, Any] = {"streamUrl": item["audio_url"]}
    if with_guid:
        offer["guid"] = item["guid"]
    model: dict[str, Any] = {"title": item["title"], "playAction": {"episodeOffer": offer}}
    if item["published_at"]:
        model["releaseDate"] = item["published_at"].replace("+00:00", "Z")
    share = {"$kind": "share", "modelType": "EpisodeLockup", "model": model}
    data = [{"data": {"headerButtonItems": [share]}, "intent": {"id": str(episode_id)}}]
    return (
        "<!DOCTYPE html><html><head><title>Apple Podcasts</title></head><body>"
        f'<script type="application/json" id="serialized-server-data">{json.dumps(data)}'
        "</script></body></html>"
    ).encode()


@pytest.mark.parametrize(
    "scenario",
    OLDER,
    ids=[
        f"{s['feed']}#{s['item_index']}{'+page-guid' if s.get('page_guid') else ''}" for s in OLDER
    ],
)
def test_older_episodes_resolve_through_the_page_and_the_real_feed(
    scenario: dict[str, Any],
) -> None:
    feed = next(f for f in manifest()["feeds"] if f["file"] == f"feeds/{scenario['feed']}")
    item = expected_items(feed)[scenario["item_index"]]
    show, episode_id = 1_000_000_001, 1_000_000_000_042
    with FixtureServer() as server:
        record = {
            "wrapperType": "track",
            "collectionId": show,
            "collectionName": "Stand-in show record",
            "feedUrl": server.url("/feed.xml"),
        }
        server.route("/lookup", Reply(body=json.dumps({"resultCount": 1, "results": [record]})
                                      .encode(), content_type="text/javascript"))  # fmt: skip
        page = _page(episode_id, item, with_guid=bool(scenario.get("page_guid")))
        server.route(f"/us/podcast/id{show}", Reply(body=page, content_type="text/html"))
        server.route("/feed.xml", Reply(body=read_bytes(feed["file"]), content_type="text/xml"))
        episode = resolve_episode(EpisodeRef(show, episode_id), _settings(server))
    assert episode.audio_url == item["audio_url"]
    assert (episode.title, episode.guid) == (item["title"], item["guid"])
    assert episode.published_at == when(item["published_at"])


def test_a_show_outside_the_us_store_resolves_in_its_storefront() -> None:
    link = SCENARIOS["storefront"]["url"]
    ref = parse_episode_url(link)
    show = FakeShow(collection_id=ref.collection_id, storefronts=(ref.country or "",))
    episode = FakeEpisode(ref.episode_id, "一集", guid="cn-guid")
    with FakeApplePodcasts(show, [episode]) as apple:
        settings = load_settings(env="local", **apple.settings_overrides())
        assert resolve_episode(ref, settings).audio_url == apple.audio_url(episode)
        assert [r.param("country") for r in apple.requests_to("/lookup")] == ["cn"]
        # The stand-in is honest: asked in the US store, Apple does not know the show.
        clear_lookup_cache()
        with pytest.raises(EpisodeNotFoundError, match="no show"):
            resolve_episode(EpisodeRef(ref.collection_id, ref.episode_id), settings)
        assert apple.requests_to("/lookup")[-1].param("country") == "us"


@pytest.mark.parametrize(
    "body",
    [b'{"resultCount": 1, "results": [{"trackTimeMillis": ' + b"9" * 400 + b"}]}",
     b"[" * 5000 + b"]" * 5000, b'{"results": [{"trackTimeMillis": 1e999}]}'],
    ids=["400-digit-number", "5000-deep", "infinite"],
)  # fmt: skip
def test_an_absurd_lookup_answer_is_a_clear_error(body: bytes) -> None:
    show = FakeShow()
    with FakeApplePodcasts(show, [FakeEpisode(1000000003, "Recent")]) as apple:
        apple.lookup_failures = [Reply(body=body, content_type="text/javascript")]
        settings = load_settings(env="local", **apple.settings_overrides())
        with pytest.raises(UnsafeDocumentError) as refused:
            resolve_episode(EpisodeRef(show.collection_id, 1000000003), settings)
    assert refused.value.code == "unsafe_document"
    assert "Apple's lookup answer" in refused.value.message


def _chain(server: FixtureServer, hops: int) -> str:
    server.route("/cdn/episode.mp3", Reply(body=ID3_STUB, content_type="audio/mpeg"))
    for hop in range(hops):
        target = f"/hop/{hop + 1}" if hop + 1 < hops else "/cdn/episode.mp3"
        server.redirect(f"/hop/{hop}", server.url(target))
    return server.url("/hop/0")


def test_a_seven_hop_tracking_chain_downloads_with_the_default_limit(tmp_path: Any) -> None:
    """podtrac -> chartable -> podsights -> CDN -> signed URL chains take 5-7 hops."""
    with FixtureServer() as server:
        start = _chain(server, 7)
        settings = load_settings(env="local", ssrf_allow=[server.host_port])
        assert settings.max_redirects == 10
        with SafeFetcher(settings) as fetcher:
            audio = fetcher.download_audio(start, tmp_path / "episode.mp3")
        assert audio.final_url == server.url("/cdn/episode.mp3")
        assert audio.path.read_bytes() == ID3_STUB


def test_the_redirect_limit_still_holds(tmp_path: Any) -> None:
    with FixtureServer() as server:
        start = _chain(server, 11)
        settings = load_settings(env="local", ssrf_allow=[server.host_port])
        with SafeFetcher(settings) as fetcher, pytest.raises(TooManyRedirectsError):
            fetcher.download_audio(start, tmp_path / "episode.mp3")
