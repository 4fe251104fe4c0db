"""Properties: whatever the host looks like, the guard never allows a non-global address."""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from podscribe.egress.guard import check_url, non_global_reason
from podscribe.settings import load_settings

SETTINGS = load_settings(env="test")
PUBLIC = "93.184.216.34"

NON_GLOBAL_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
NON_GLOBAL_V6 = [
    "::1/128",
    "::/128",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "2001:db8::/32",
    "64:ff9b:1::/48",
    "100::/64",
]

non_global_v4 = st.sampled_from(NON_GLOBAL_V4).flatmap(lambda net: st.ip_addresses(network=net))
non_global_v6 = st.sampled_from(NON_GLOBAL_V6).flatmap(lambda net: st.ip_addresses(network=net))


def embeddings(inner: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """Every IPv6 form that carries ``inner``: mapped, translated, compatible, NAT64, 6to4."""
    value = int(inner)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | value),
        ipaddress.IPv6Address((0xFFFF << 48) | value),
        ipaddress.IPv6Address(value),
        ipaddress.IPv6Address((0x64FF9B << 96) | value),
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 0x1234),
    ]


def literal_url(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}/"


@given(non_global_v4 | non_global_v6)
def test_non_global_literals_are_refused(address):
    assert not check_url(literal_url(address), SETTINGS).allowed


@given(non_global_v4 | non_global_v6, st.booleans())
def test_names_answering_any_non_global_address_are_refused(address, private_first):
    answers = [str(address), PUBLIC] if private_first else [PUBLIC, str(address)]
    decision = check_url("http://cdn.example.com/", SETTINGS, resolver=lambda h, p: answers)
    assert not decision.allowed


@given(non_global_v4, st.integers(min_value=0, max_value=4))
def test_ipv6_forms_embedding_a_non_global_ipv4_are_refused(inner, form):
    embedded = embeddings(inner)[form]
    if form == 2:
        assume(int(inner) > 1)  # ::0 and ::1 are themselves, not an embedding
    assert not check_url(literal_url(embedded), SETTINGS).allowed
    decision = check_url("http://cdn.example.com/", SETTINGS, resolver=lambda h, p: [str(embedded)])
    assert not decision.allowed


@given(st.ip_addresses())
def test_anything_python_calls_non_global_is_refused(address):
    """A second opinion: the standard library's view never lets more through than ours."""
    decision = check_url(literal_url(address), SETTINGS)
    if not address.is_global:
        assert not decision.allowed
    if decision.allowed:
        assert non_global_reason(address) is None


def permissive_resolver(host: str, port: int) -> list[str]:
    """Resolves like libc: numeric spellings (``127.1``, ``0x7f.1``, ``2130706433``) too."""
    try:
        return [socket.inet_ntoa(socket.inet_aton(host))]
    except OSError:
        return [PUBLIC]


host_like = st.one_of(
    st.text(alphabet="0123456789.x", min_size=1, max_size=20),
    st.builds(
        lambda parts, hexa: ".".join(hex(p) if hexa else oct(p).replace("0o", "0") for p in parts),
        st.lists(st.integers(0, 255), min_size=1, max_size=4),
        st.booleans(),
    ),
    st.integers(0, 2**32 - 1).map(str),
    st.from_regex(r"\A[a-z0-9.\-%]{1,30}\Z"),
)


@settings(max_examples=300)
@given(host_like, st.sampled_from(["", ".", ":80"]))
def test_generated_hosts_never_reach_a_non_global_address(host, suffix):
    decision = check_url(f"http://{host}{suffix}/", SETTINGS, resolver=permissive_resolver)
    if decision.allowed:
        for address in decision.addresses:
            assert non_global_reason(ipaddress.ip_address(address)) is None
        numeric = permissive_resolver(host, 80)[0]
        if numeric != PUBLIC:
            # A numeric spelling got through: only the canonical dotted quad may.
            assert host == numeric
