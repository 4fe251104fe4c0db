"""The SSRF guard's verdicts: a table of hostile spellings, public URLs, and properties.

No real DNS: names resolve through an injected table (tests.fakes.resolvers).
"""

from __future__ import annotations

import ipaddress

import pytest

from podscribe.egress.guard import GuardDecision, check_spelling, check_url, non_global_reason
from podscribe.settings import load_settings
from tests.fakes.resolvers import FailingResolver, RebindingResolver, StaticResolver

PUBLIC_V4 = "93.184.216.34"
RESOLVER = StaticResolver(
    {
        "public.example.com": [PUBLIC_V4],
        "podcasts.apple.com": ["17.253.144.10", "2a01:b740:a42:100::4"],
        "itunes.apple.com": ["23.38.160.37"],
        "traffic.megaphone.fm": ["2606:4700::6810:e4b"],
        "dts.podtrac.com": ["104.18.22.130", "104.18.23.130"],
        "xn--bcher-kva.de": ["185.199.108.153"],
        "private.example.com": ["10.0.0.1"],
        "rfc1918-172.example.com": ["172.20.1.1"],
        "home.example.com": ["192.168.1.1"],
        "mixed.example.com": [PUBLIC_V4, "192.168.1.1"],
        "mixed6.example.com": ["2606:4700::1", "::1"],
        "v6loop.example.com": ["::1"],
        "metadata.example.com": ["169.254.169.254"],
        "mapped.example.com": ["::ffff:169.254.169.254"],
        "nat64.example.com": ["64:ff9b::a00:1"],
        "sixtofour.example.com": ["2002:a00:1::1"],
        "compat.example.com": ["::7f00:1"],
        "translated.example.com": ["::ffff:0:a00:1"],
        "ula.example.com": ["fd00:ec2::254"],
        "linklocal6.example.com": ["fe80::1"],
        "scoped.example.com": ["fe80::1%eth0"],
        "scoped-global.example.com": ["2606:4700::1%eth0"],
        "cgnat.example.com": ["100.64.0.1"],
        "zero.example.com": ["0.0.0.0"],
        "broadcast.example.com": ["255.255.255.255"],
        "multicast.example.com": ["224.0.0.251"],
        "testnet.example.com": ["192.0.2.10"],
        "benchmark.example.com": ["198.18.0.1"],
        "doc6.example.com": ["2001:db8::1"],
        "sitelocal.example.com": ["fec0::1"],
        "teredo.example.com": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
        "garbage.example.com": ["not-an-address"],
    }
)

HOSTILE = [
    # loopback, every spelling a resolver or browser accepts
    "http://127.0.0.1/",
    "http://127.0.0.1:80/",
    "https://127.0.0.1:443/",
    "http://127.255.255.254/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7F.0x0.0x0.0x1/",
    "http://0X7F.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0177.0000.0000.0001/",
    "http://127.000.000.001/",
    "http://0127.0.0.1/",
    "http://127.0.0.1./",
    "http://127.0.0.1../",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://LocalHost:80/",
    "http://app.localhost/",
    "http://0/",
    "http://0.0.0.0/",
    "http://0x0/",
    "http://00/",
    "http://0.0.0.0:443/",
    # RFC 1918, CGNAT, link-local, special purpose
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "https://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/computeMetadata/v1/",
    "http://169.254.0.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://192.0.0.8/",
    "http://192.0.0.170/",
    "http://192.0.2.1/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://198.18.0.1/",
    "http://198.19.255.254/",
    "http://192.88.99.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    # IPv6 and IPv4 embedded in IPv6
    "http://[::1]/",
    "http://[::]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[0000::0001]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::FFFF:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.1.1]/",
    "http://[::ffff:0:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[::7f00:1]/",
    "http://[::10.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b:1::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2002:a00:1::]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1%eth0]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[ff05::1:3]/",
    "http://[2001:db8::1]/",
    "http://[3fff::1]/",
    "http://[2001::1]/",
    "http://[2001:2::1]/",
    "http://[100::1]/",
    "http://[::1]:443/",
    # internal names
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata.google.internal./",
    "http://METADATA.GOOGLE.INTERNAL/",
    "http://metadata/",
    "http://instance-data/",
    "http://db.internal/",
    "http://printer.local/",
    "http://nas.lan/",
    "http://router.home.arpa/",
    "http://1.0.0.127.in-addr.arpa/",
    "http://evil.test/",
    "http://intranet/",
    # names that resolve inward
    "http://private.example.com/",
    "http://rfc1918-172.example.com/",
    "http://home.example.com/",
    "http://mixed.example.com/",
    "http://mixed6.example.com/",
    "http://v6loop.example.com/",
    "http://metadata.example.com/",
    "http://mapped.example.com/",
    "http://nat64.example.com/",
    "http://sixtofour.example.com/",
    "http://compat.example.com/",
    "http://translated.example.com/",
    "http://ula.example.com/",
    "http://linklocal6.example.com/",
    "http://scoped.example.com/",
    "http://scoped-global.example.com/",
    "http://cgnat.example.com/",
    "http://zero.example.com/",
    "http://broadcast.example.com/",
    "http://multicast.example.com/",
    "http://testnet.example.com/",
    "http://benchmark.example.com/",
    "http://doc6.example.com/",
    "http://sitelocal.example.com/",
    "http://teredo.example.com/",
    "http://garbage.example.com/",
    "http://does-not-resolve.example.com/",
    # odd spellings: unicode dots, full-width forms, percent-encoding
    "http://127\u30020\u30020\u30021/",
    "http://127\uff0e0\uff0e0\uff0e1/",
    "http://127\uff610\uff610\uff611/",
    "http://public\u3002example\u3002com/",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",
    "http://\u2460\u2461\u2466.0.0.1/",
    "http://%31%32%37.0.0.1/",
    "http://127.0.0.%31/",
    "http://local%68ost/",
    "http://public.example.com%2e/",
    # userinfo, schemes, structure
    "http://user@public.example.com/",
    "http://user:pass@public.example.com/",
    "http://public.example.com@127.0.0.1/",
    "http://public.example.com:80@127.0.0.1/",
    "http://public.example.com\\@127.0.0.1/",
    "ftp://public.example.com/",
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "gopher://public.example.com:70/",
    "dict://public.example.com:11211/",
    "ldap://public.example.com/",
    "jar:http://public.example.com!/",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//public.example.com/",
    "http:/public.example.com/",
    "http:public.example.com/",
    "public.example.com/episode.mp3",
    "",
    "http:///episode.mp3",
    "http://public.example.com /",
    "http://public.example.com\t/",
    "http://public.example.com/\n",
    "http://public.example.com\r\n.evil/",
    "http://-bad-.example.com/",
    "http://a..b.example.com/",
    "http://exa_mple.com/",
    "http://" + "a" * 64 + ".example.com/",
    "http://[::1/",
    "http://[::1]x/",
    "http://[not-ipv6]/",
    # ports
    "http://public.example.com:8080/",
    "http://public.example.com:22/",
    "http://public.example.com:6379/",
    "http://public.example.com:0/",
    "http://public.example.com:99999/",
    "http://public.example.com:-1/",
    "http://public.example.com:80a/",
    "http://public.example.com:+80/",
    "http://public.example.com:\u0668\u0660/",
    "https://93.184.216.34:8443/",
]

PUBLIC = [
    "https://podcasts.apple.com/us/podcast/some-show/id1535809341?i=1000651234567",
    "HTTPS://PODCASTS.APPLE.COM/us/podcast/id1",
    "https://itunes.apple.com/lookup?id=1&entity=podcastEpisode&limit=200",
    "https://traffic.megaphone.fm/ABC1234567.mp3?updated=1700000000",
    "https://dts.podtrac.com/redirect.mp3/traffic.megaphone.fm/ABC.mp3",
    "http://public.example.com/episode.mp3",
    "http://public.example.com:80/episode.mp3",
    "https://public.example.com:443/feed.xml",
    f"http://{PUBLIC_V4}/",
    "https://1.1.1.1/dns-query",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "https://b\u00fccher.de/podcast.rss",
]

SETTINGS = load_settings(env="test")


def check(url: str) -> GuardDecision:
    return check_url(url, SETTINGS, resolver=RESOLVER)


def test_the_table_is_big_enough():
    assert len(HOSTILE) >= 100
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_blocked_with_a_reason(url):
    decision = check(url)
    assert not decision.allowed
    assert decision.reason
    assert "\n" not in decision.reason
    assert decision.addresses == ()


@pytest.mark.parametrize("url", PUBLIC)
def test_public_urls_are_allowed_with_the_checked_addresses(url):
    decision = check(url)
    assert decision.allowed, decision.reason
    assert decision.reason is None
    assert decision.addresses
    for address in decision.addresses:
        assert non_global_reason(ipaddress.ip_address(address)) is None


def test_every_answer_is_kept_for_the_connection():
    decision = check("https://dts.podtrac.com/x.mp3")
    assert decision.addresses == ("104.18.22.130", "104.18.23.130")
    assert (decision.host, decision.port) == ("dts.podtrac.com", 443)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://169.254.169.254/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1 (loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254"),
        ("http://[2002:c0a8:101::1]/", "6to4 form of 192.168.1.1"),
        ("http://[fd00::1]/", "unique local"),
        ("http://0x7f.1/", "non-canonical IPv4"),
        ("http://127\u30020\u30020\u30021/", "unicode dots"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://public.example.com./", "trailing dot"),
        ("http://user@public.example.com/", "user information"),
        ("http://metadata.google.internal/", "reserved for internal use"),
        ("http://mixed.example.com/", "192.168.1.1"),
        ("http://does-not-resolve.example.com/", "does not resolve"),
        ("http://public.example.com:8080/", "port 8080 is not allowed"),
        ("ftp://public.example.com/", "scheme 'ftp'"),
    ],
)
def test_reasons_name_the_problem(url, fragment):
    assert fragment in (check(url).reason or "")


def test_allowed_ports_are_configurable():
    settings = load_settings(env="test", allowed_ports=[443, 8443])
    assert check_url("https://public.example.com:8443/", settings, resolver=RESOLVER).allowed
    assert not check_url("http://public.example.com/", settings, resolver=RESOLVER).allowed


def test_a_failing_resolver_means_refuse():
    decision = check_url("http://public.example.com/", SETTINGS, resolver=FailingResolver())
    assert not decision.allowed
    assert "does not resolve" in (decision.reason or "")


def test_each_check_asks_again_so_a_rebinding_answer_is_caught():
    resolver = RebindingResolver("rebind.example.com", [PUBLIC_V4], ["169.254.169.254"])
    first = check_url("http://rebind.example.com/", SETTINGS, resolver=resolver)
    second = check_url("http://rebind.example.com/", SETTINGS, resolver=resolver)
    assert first.allowed
    assert first.addresses == (PUBLIC_V4,)
    assert not second.allowed
    assert "169.254.169.254" in (second.reason or "")


class TestLocalEscapeHatch:
    def test_lets_exactly_the_listed_pairs_through(self):
        settings = load_settings(env="local", ssrf_allow=["localhost:8080", "127.0.0.1:9000"])
        loopback = StaticResolver({"localhost": ["127.0.0.1", "::1"]})
        allowed = check_url("http://localhost:8080/x", settings, resolver=loopback)
        assert allowed.allowed
        assert allowed.addresses == ("127.0.0.1", "::1")
        assert check_url("http://127.0.0.1:9000/", settings, resolver=loopback).allowed
        for url in (
            "http://localhost:8081/",
            "http://127.0.0.1:8080/",
            "http://127.0.0.2:9000/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]:9000/",
            "http://127.1:9000/",
            "http://169.254.169.254/",
        ):
            assert not check_url(url, settings, resolver=loopback).allowed, url

    def test_holds_a_listed_name_to_loopback_answers(self):
        settings = load_settings(env="local", ssrf_allow=["localhost:8080"])
        hijacked = StaticResolver({"localhost": ["127.0.0.1", "10.0.0.5"]})
        decision = check_url("http://localhost:8080/", settings, resolver=hijacked)
        assert not decision.allowed
        assert "PODSCRIBE_SSRF_ALLOW admits loopback only" in (decision.reason or "")

    def test_refuses_to_load_outside_the_local_profile(self):
        for env in ("test", "production"):
            with pytest.raises(Exception, match="PODSCRIBE_ENV=local"):
                load_settings(env=env, ssrf_allow=["127.0.0.1:8080"])

    def test_only_loopback_pairs_may_be_listed(self):
        with pytest.raises(Exception, match="only loopback"):
            load_settings(env="local", ssrf_allow=["10.0.0.1:80"])


def test_check_spelling_needs_no_resolver():
    assert check_spelling("https://podcasts.apple.com/x") is None
    assert "non-canonical" in (check_spelling("http://0x7f.1/") or "")
    assert check_spelling("http://127.0.0.1/") is None  # the address is check_url's job
