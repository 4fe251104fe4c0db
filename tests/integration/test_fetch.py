"""The safe fetcher against loopback fixture servers: redirects, rebinding, caps, timeouts.

Every hostile hop is refused before a connection is made: the fixture server's request log
shows only the hops that were allowed, and nothing is ever sent beyond loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import (
    DownloadRefusedError,
    FetchFailedError,
    FetchTimeoutError,
    TooLargeError,
    TooManyRedirectsError,
    UpstreamStatusError,
    UpstreamThrottledError,
)
from podscribe.settings import Settings, load_settings
from tests.fakes.resolvers import RebindingResolver, StaticResolver


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


def local_settings(*servers: FixtureServer, **overrides: object) -> Settings:
    return load_settings(env="local", ssrf_allow=[each.host_port for each in servers], **overrides)


@pytest.fixture
def fetcher(server: FixtureServer) -> Iterator[SafeFetcher]:
    with SafeFetcher(local_settings(server, idle_timeout_seconds=2)) as safe:
        yield safe


def test_fetches_a_document_and_follows_a_checked_relative_redirect(server, fetcher):
    server.redirect("/old", "/new")
    server.route("/new", Reply(body=b'{"ok": true}', content_type="application/json"))

    document = fetcher.get_document(server.url("/old"), accept="application/json")

    assert document.content == b'{"ok": true}'
    assert document.url == server.url("/new")
    assert document.status == 200
    assert document.content_type == "application/json"
    assert server.paths_requested() == ["/old", "/new"]
    assert server.requests[0].headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/computeMetadata/v1/", "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "reserved for internal use"),
        ("http://10.0.0.7/admin", "private address"),
        ("http://10.255.255.254:80/", "private address"),
        ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped"),
        ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
        ("http://0x7f000001:{port}/", "non-canonical"),
        ("http://2130706433:{port}/", "non-canonical"),
        ("http://127.1:{port}/", "non-canonical"),
        ("http://localhost:{port}/", "reserved for internal use"),
        ("http://127.0.0.1:{other}/", "loopback address"),
        ("http://[::1]:{port}/", "loopback address"),
        ("http://93.184.216.34:{port}/", "port"),
        ("gopher://127.0.0.1:{port}/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pass@127.0.0.1:{port}/", "user information"),
        ("http://public.example.com./", "trailing dot"),
        ("http://public.example.com%2e/", "percent-encoded"),
    ],
)
def test_a_redirect_to_an_internal_address_is_refused_before_connecting(
    server, fetcher, location, reason
):
    server.redirect("/start", location.format(port=server.port, other=server.port + 1))
    server.route("/", Reply(body=b"internal"))

    with pytest.raises(DownloadRefusedError) as refused:
        fetcher.get_document(server.url("/start"))

    assert reason in refused.value.message
    assert refused.value.code == "download_refused"
    assert server.paths_requested() == ["/start"]


def test_a_redirect_to_a_name_resolving_privately_is_refused(server):
    resolver = StaticResolver({"cdn.example.com": ["93.184.216.34", "10.1.2.3"]})
    with SafeFetcher(local_settings(server), resolver=resolver) as fetcher:
        server.redirect("/start", "http://cdn.example.com/episode.mp3")
        with pytest.raises(DownloadRefusedError, match=r"10\.1\.2\.3"):
            fetcher.get_document(server.url("/start"))
    assert resolver.asked("cdn.example.com") == 1


def test_a_redirect_loop_is_stopped(server, fetcher):
    server.redirect("/a", "/b")
    server.redirect("/b", server.url("/a"))

    with pytest.raises(TooManyRedirectsError, match="loop"):
        fetcher.get_document(server.url("/a"))
    assert server.paths_requested() == ["/a", "/b"]


def test_the_hop_limit_holds(server):
    settings = local_settings(server, max_redirects=3)
    for hop in range(5):
        server.redirect(f"/hop{hop}", f"/hop{hop + 1}")
    server.route("/hop3", Reply(body=b"three hops"))
    with SafeFetcher(settings) as fetcher:
        assert fetcher.get_document(server.url("/hop0")).content == b"three hops"
        server.redirect("/hop3", "/hop4")
        with pytest.raises(TooManyRedirectsError, match="more than 3"):
            fetcher.get_document(server.url("/hop0"))


def test_a_redirect_without_location_is_an_upstream_error(server, fetcher):
    server.route("/nowhere", Reply(status=302, body=b""))
    with pytest.raises(UpstreamStatusError):
        fetcher.get_document(server.url("/nowhere"))


def test_rebinding_cannot_move_the_connection():
    """The connection goes to the checked answer; the resolver is asked once per request.

    The server listens on 127.0.0.2 only. The resolver says ``localhost`` is 127.0.0.2 the
    first time and 169.254.169.254 afterwards, while the system resolver would say 127.0.0.1
    (where nothing listens on this port): the fetch can only succeed by connecting to the
    address the guard checked, without a second lookup of any kind.
    """
    with FixtureServer("127.0.0.2") as server:
        server.route("/feed", Reply(body=b"<rss/>", content_type="application/rss+xml"))
        resolver = RebindingResolver("localhost", ["127.0.0.2"], ["169.254.169.254"])
        settings = load_settings(env="local", ssrf_allow=[f"localhost:{server.port}"])
        with SafeFetcher(settings, resolver=resolver) as fetcher:
            document = fetcher.get_document(server.url("/feed", host="localhost"))
            assert document.content == b"<rss/>"
            assert resolver.asked("localhost") == 1
            assert server.requests[0].headers["Host"] == f"localhost:{server.port}"

            with pytest.raises(DownloadRefusedError, match=r"169\.254\.169\.254"):
                fetcher.get_document(server.url("/feed", host="localhost"))
        assert server.paths_requested() == ["/feed"]


def test_a_declared_oversized_body_is_refused_unread(server):
    server.route("/big", Reply(body=b"x" * 5000))
    with SafeFetcher(local_settings(server)) as fetcher, pytest.raises(TooLargeError):
        fetcher.get_document(server.url("/big"), max_bytes=4096)


def test_an_undeclared_oversized_body_is_cut_off(server):
    server.route("/big", Reply(chunks=(b"x" * 3000,) * 4, declare_length=False))
    with SafeFetcher(local_settings(server)) as fetcher:
        with pytest.raises(TooLargeError) as too_large:
            fetcher.get_document(server.url("/big"), max_bytes=4096)
        assert too_large.value.code == "too_large"
        assert fetcher.get_document(server.url("/big")).content == b"x" * 12000


def test_a_silent_server_hits_the_idle_timeout(server):
    server.route("/stall", Reply(chunks=(b"a", b"b"), chunk_delay=1.5))
    settings = local_settings(server, idle_timeout_seconds=0.5)
    with SafeFetcher(settings) as fetcher, pytest.raises(FetchTimeoutError) as timeout:
        fetcher.get_document(server.url("/stall"))
    assert timeout.value.transient


def test_a_trickling_server_hits_the_total_timeout(server):
    """Each byte arrives within the idle timeout, but the whole takes too long."""
    server.route("/trickle", Reply(chunks=(b"x",) * 40, chunk_delay=0.1))
    settings = local_settings(server, idle_timeout_seconds=1, document_timeout_seconds=1.0)
    with SafeFetcher(settings) as fetcher, pytest.raises(FetchTimeoutError, match="total"):
        fetcher.get_document(server.url("/trickle"))


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (404, UpstreamStatusError, False),
        (410, UpstreamStatusError, False),
        (429, UpstreamThrottledError, True),
        (500, FetchFailedError, True),
        (503, FetchFailedError, True),
    ],
)
def test_status_codes_become_our_errors(server, fetcher, status, error, transient):
    server.route("/x", Reply(status=status, body=b"no", headers={"Retry-After": "7"}))
    with pytest.raises(error) as raised:
        fetcher.get_document(server.url("/x"))
    assert raised.value.transient is transient
    if status == 429:
        assert raised.value.retry_after == 7.0


def test_a_closed_port_is_a_transient_failure(server):
    settings = local_settings(server)
    port = server.port
    server.stop()
    with SafeFetcher(settings) as fetcher, pytest.raises(FetchFailedError):
        fetcher.get_document(f"http://127.0.0.1:{port}/")


def test_a_url_outside_the_allow_list_is_refused_without_a_request(server, fetcher):
    with pytest.raises(DownloadRefusedError, match="loopback address"):
        fetcher.get_document(f"http://127.0.0.1:{server.port}/".replace("127.0.0.1", "127.0.0.3"))
    assert server.requests == []


def test_the_escape_hatch_is_ignored_outside_the_local_profile(server):
    with pytest.raises(Exception, match="PODSCRIBE_ENV=local"):
        load_settings(env="production", ssrf_allow=[server.host_port])
    fetcher = SafeFetcher(load_settings(env="test"))
    with fetcher, pytest.raises(DownloadRefusedError, match="loopback"):
        fetcher.get_document(server.url("/"))
    assert server.requests == []


def test_proxy_variables_cannot_route_around_the_guard(server, monkeypatch):
    """HTTP_PROXY would make a stock httpx client send everything to the proxy."""
    with FixtureServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("/"))
        monkeypatch.setenv("ALL_PROXY", proxy.url("/"))
        server.route("/feed", Reply(body=b"direct"))
        with SafeFetcher(local_settings(server)) as fetcher:
            assert fetcher.get_document(server.url("/feed")).content == b"direct"
        assert proxy.requests == []
