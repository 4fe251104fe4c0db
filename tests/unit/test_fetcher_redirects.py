"""SafeFetcher's own redirect loop, driven through an injected ``httpx.MockTransport``.

No sockets: the mock answers each hop, and a static resolver answers the guard. The guard
still stands in front of the injected transport, so every test here also proves that a hop it
refuses never reaches the transport at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx
import pytest

from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import DownloadRefusedError, TooManyRedirectsError, UpstreamStatusError
from podscribe.settings import Settings, load_settings
from tests.fakes.resolvers import StaticResolver

# Globally routable addresses (the guard refuses documentation ranges such as 203.0.113/24).
PUBLIC = "93.184.215.14"
OTHER_PUBLIC = "151.101.1.1"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a table of ``(host, path) -> response``."""

    def __init__(self, routes: Mapping[tuple[str, str], httpx.Response]) -> None:
        self.routes = dict(routes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.url.host, request.url.path))
        if answer is None:
            return httpx.Response(404, content=b"no such route")
        # A stream, not content: SafeFetcher reads bodies raw, as a real connection gives them.
        body = httpx.ByteStream(answer.content)
        return httpx.Response(answer.status_code, headers=answer.headers, stream=body)

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]


def redirect(location: str, status: int = 302) -> httpx.Response:
    return httpx.Response(status, headers={"Location": location})


def document(body: bytes = b"<rss/>") -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "application/rss+xml"}, content=body)


def settings(**overrides: object) -> Settings:
    return load_settings(**{"env": "test", "max_redirects": 5, **overrides})


def resolver() -> StaticResolver:
    return StaticResolver(
        {
            "feeds.example": [PUBLIC],
            "cdn.example": [OTHER_PUBLIC],
            "tracker.example": [PUBLIC],
            "internal.example": ["10.0.0.7"],
            "metadata.example": ["169.254.169.254"],
        }
    )


def fetcher(handler: Handler, dns: StaticResolver, **overrides: object) -> SafeFetcher:
    return SafeFetcher(settings(**overrides), resolver=dns, transport=httpx.MockTransport(handler))


def test_a_chain_of_absolute_and_relative_locations_is_followed_to_the_end() -> None:
    routes = Recorder(
        {
            ("tracker.example", "/e/feeds.example/show.xml"): redirect(
                "https://feeds.example/a/b/show.xml", 301
            ),
            ("feeds.example", "/a/b/show.xml"): redirect("../c/show.xml", 302),
            ("feeds.example", "/a/c/show.xml"): redirect("/final.xml", 307),
            ("feeds.example", "/final.xml"): redirect("//cdn.example/final.xml", 308),
            ("cdn.example", "/final.xml"): document(b"<rss>the end</rss>"),
        }
    )
    dns = resolver()
    with fetcher(routes, dns) as client:
        got = client.get_document("https://tracker.example/e/feeds.example/show.xml")
    assert got.content == b"<rss>the end</rss>"
    assert got.url == "https://cdn.example/final.xml"
    assert routes.urls == [
        "https://tracker.example/e/feeds.example/show.xml",
        "https://feeds.example/a/b/show.xml",
        "https://feeds.example/a/c/show.xml",
        "https://feeds.example/final.xml",
        "https://cdn.example/final.xml",
    ]
    # The guard resolved and checked every hop's host before the transport saw it.
    assert dns.asked("tracker.example") == 1
    assert dns.asked("feeds.example") == 3
    assert dns.asked("cdn.example") == 1


def test_the_hop_limit_counts_redirects_not_requests() -> None:
    chain = {("feeds.example", f"/{n}"): redirect(f"/{n + 1}") for n in range(10)}
    chain[("feeds.example", "/3")] = document()
    with fetcher(Recorder(chain), resolver(), max_redirects=3) as client:
        assert client.get_document("https://feeds.example/0").url == "https://feeds.example/3"
    routes = Recorder({("feeds.example", f"/{n}"): redirect(f"/{n + 1}") for n in range(10)})
    refused = pytest.raises(TooManyRedirectsError, match="more than 3 redirects")
    with fetcher(routes, resolver(), max_redirects=3) as client, refused:
        client.get_document("https://feeds.example/0")
    assert len(routes.requests) == 4  # the first request and three redirects followed


def test_no_redirects_allowed_means_the_first_redirect_is_too_many() -> None:
    routes = Recorder({("feeds.example", "/0"): redirect("/1")})
    with (
        fetcher(routes, resolver(), max_redirects=0) as client,
        pytest.raises(TooManyRedirectsError),
    ):
        client.get_document("https://feeds.example/0")
    assert len(routes.requests) == 1


def test_a_loop_is_stopped_when_it_comes_back() -> None:
    routes = Recorder(
        {
            ("feeds.example", "/a"): redirect("https://cdn.example/b"),
            ("cdn.example", "/b"): redirect("https://feeds.example/a"),
        }
    )
    refused = pytest.raises(TooManyRedirectsError, match="loop")
    with fetcher(routes, resolver(), max_redirects=20) as client, refused:
        client.get_document("https://feeds.example/a")
    assert len(routes.requests) == 2


@pytest.mark.parametrize(
    "location",
    [
        "https://internal.example/feed.xml",  # a name resolving to RFC 1918
        "http://metadata.example/computeMetadata/v1/",  # a name resolving to link-local
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/admin",
        "http://[::1]/",
        "http://10.1.2.3/",
        "https://unknown.example/",  # does not resolve at all
    ],
)
def test_each_location_is_checked_by_the_guard_before_it_is_requested(location: str) -> None:
    routes = Recorder({("feeds.example", "/show.xml"): redirect(location)})
    with fetcher(routes, resolver()) as client, pytest.raises(DownloadRefusedError):
        client.get_document("https://feeds.example/show.xml")
    assert routes.urls == ["https://feeds.example/show.xml"]


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/passwd",
        "ftp://feeds.example/show.xml",
        "gopher://feeds.example/",
        "https://user:secret@cdn.example/show.xml",
        "https://cdn.example\\@10.0.0.7/show.xml",
        "https://cdn.example:6379/show.xml",  # not an ordinary port
    ],
)
def test_locations_spelled_or_aimed_wrongly_are_refused(location: str) -> None:
    routes = Recorder({("feeds.example", "/show.xml"): redirect(location)})
    with fetcher(routes, resolver()) as client, pytest.raises(DownloadRefusedError):
        client.get_document("https://feeds.example/show.xml")
    assert len(routes.requests) == 1


def test_https_to_http_is_followed_when_the_address_is_public() -> None:
    # The guard judges where a hop goes, not whether it keeps TLS: CDNs still redirect
    # podcast audio to plain http, and the address check holds either way.
    routes = Recorder(
        {
            ("feeds.example", "/show.xml"): redirect("http://cdn.example/show.xml"),
            ("cdn.example", "/show.xml"): document(),
        }
    )
    with fetcher(routes, resolver()) as client:
        assert client.get_document("https://feeds.example/show.xml").url == (
            "http://cdn.example/show.xml"
        )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_hop_is_a_get_with_the_callers_headers(status: int) -> None:
    routes = Recorder(
        {
            ("feeds.example", "/show.xml"): redirect("https://cdn.example/show.xml", status),
            ("cdn.example", "/show.xml"): document(),
        }
    )
    with fetcher(routes, resolver()) as client:
        client.get_document("https://feeds.example/show.xml", accept="application/rss+xml")
    assert [request.method for request in routes.requests] == ["GET", "GET"]
    assert {request.headers["accept"] for request in routes.requests} == {"application/rss+xml"}
    assert all(not request.content for request in routes.requests)


def test_a_redirect_without_a_location_is_an_upstream_status() -> None:
    routes = Recorder({("feeds.example", "/show.xml"): httpx.Response(302)})
    with fetcher(routes, resolver()) as client, pytest.raises(UpstreamStatusError) as raised:
        client.get_document("https://feeds.example/show.xml")
    assert raised.value.status == 302


def test_a_webhook_post_is_never_redirected() -> None:
    routes = Recorder({("feeds.example", "/hook"): redirect("https://cdn.example/hook", 307)})
    with fetcher(routes, resolver()) as client, pytest.raises(UpstreamStatusError):
        client.post_json("https://feeds.example/hook", b"{}", timeout=5)
    assert routes.urls == ["https://feeds.example/hook"]


def test_an_injected_transport_is_still_behind_the_guard() -> None:
    routes = Recorder({("127.0.0.1", "/"): document()})
    with fetcher(routes, resolver()) as client:
        with pytest.raises(DownloadRefusedError):
            client.get_document("http://127.0.0.1/")
        with pytest.raises(DownloadRefusedError):
            client.get_document("https://internal.example/")
    assert routes.requests == []
